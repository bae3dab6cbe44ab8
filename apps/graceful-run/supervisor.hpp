#pragma once
/// \file
/// The event loop of graceful-run: workers, signals, readiness and timers.
///
/// Invariant (as in tableflip): at any time there is at most one serving worker ("current")
/// and at most one starting worker that is not ready yet ("candidate"); any number of
/// replaced workers may still be draining, each with a deadline. The listening sockets stay
/// open in graceful-run from start until stop, so between two workers, or while a crashed
/// one is restarted, connections wait in the kernel's listen queue and are never refused.

#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "fd.hpp"
#include "listeners.hpp"
#include "notify.hpp"
#include "options.hpp"
#include "probe.hpp"
#include "spawn.hpp"

struct signalfd_siginfo;

namespace graceful::run {

/// Runs workers until told to stop; returns graceful-run's exit status.
class supervisor {
public:
  using clock = std::chrono::steady_clock;

  /// `signals` is a signalfd for the signals main() blocked.
  supervisor(run_options opts, std::vector<listener> listeners, notify_socket notify,
             unique_fd signals, std::shared_ptr<spdlog::logger> log);

  /// Starts the first worker and runs the loop. Returns the status to exit with: the
  /// serving worker's (exit code, or 128+signal), 127 when the command cannot be executed.
  int run();

private:
  enum class role { current, candidate, draining };
  struct worker {
    process proc;
    unsigned generation = 0;
    role r = role::current;
    clock::time_point started{};
    bool ready = false;
    clock::time_point ready_by = clock::time_point::max();  ///< candidate only
    clock::time_point kill_at = clock::time_point::max();   ///< once told to stop
    clock::time_point told_to_stop{};                        ///< when SIGTERM was sent
  };

  worker* find(pid_t pid);
  worker* with_role(role r);
  worker* awaiting_readiness();
  bool start_worker(role r);
  void on_signal(const signalfd_siginfo& si);
  void on_sighup();
  void begin_stop(int sig);
  void reap();
  void on_exit(pid_t pid, int status);
  void on_notify(const notify_message& m);
  void mark_ready(worker& w, const char* how);
  void retire(worker& w, const char* why);
  void on_timers();
  void poll_probe(short revents);
  void handle_orphans();
  clock::time_point next_timer() const;
  void schedule_restart(clock::duration lived);
  void sd_notify(const char* state);

  run_options opts_;
  std::vector<listener> listeners_;
  notify_socket notify_;
  unique_fd signals_;
  std::shared_ptr<spdlog::logger> log_;

  std::list<worker> workers_;
  unsigned generation_ = 0;
  std::optional<clock::time_point> restart_at_;
  clock::duration backoff_{};
  std::optional<http_probe> probe_;
  pid_t probe_for_ = -1;
  clock::time_point probe_deadline_ = clock::time_point::max();
  clock::time_point next_probe_ = clock::time_point::min();
  std::string last_probe_failure_;

  bool stopping_ = false;
  clock::time_point stop_deadline_ = clock::time_point::max();
  bool orphans_signalled_ = false;
  bool orphans_killed_ = false;
  pid_t primary_ = -1;          ///< the worker whose status graceful-run exits with
  std::optional<int> exit_status_;
  std::optional<int> last_status_;
  bool told_systemd_ready_ = false;
};

} // namespace graceful::run
