#pragma once
/// \file
/// The process lifecycle: turns SIGTERM/SIGINT (or request_stop) into an ordered, logged,
/// bounded stop: running -> draining -> shutting_down -> cleanup -> exited.
///
/// Create exactly one, in main, before any other thread: its constructor blocks the
/// signals it handles in the calling thread, so every thread started afterwards inherits
/// the mask and only the lifecycle reads them: its own thread, and for SIGTERM/SIGINT also
/// the thread waiting in run(), so the stop starts without a hand-over between threads (a
/// signal sent during start-up stays pending and is handled, never lost). SIGPROF and every other signal
/// stay as they were, so the CPU profiler keeps working.
///
/// Signals: SIGTERM, SIGINT  start the stop; a second one while stopping exits at once
///                           with 128+signo.
///          SIGHUP           calls the on_signal(SIGHUP) handlers (upgrade); ignored with a
///                           log line when there is none.
///          SIGUSR1          writes a stack dump of every thread plus registered sections.
///          SIGUSR2          starts / stops the gperftools CPU profiler.
///
/// The lifecycle knows nothing of event loops: servers plug in through hooks and observe
/// the stop through stop_token(), stop_fd() or wait_for_stop().

#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include <graceful/core/deadline.hpp>
#include <graceful/core/result.hpp>
#include <graceful/lifecycle/options.hpp>
#include <graceful/lifecycle/phase.hpp>
#include <graceful/lifecycle/registration.hpp>

namespace graceful::lifecycle {

/// A hook: named work run in one phase. It receives the stop deadline and should return
/// by then; hooks of one phase run concurrently, each but the last on its own thread and the
/// last on the thread that called run(). A hook that throws is logged and does not stop the
/// others.
using hook = std::function<void(graceful::deadline)>;

/// Produces one section of the SIGUSR1 dump (e.g. the HTTP server's in-flight requests).
/// Called on the lifecycle's thread while the process keeps serving: it must not block.
using dump_section = std::function<std::string()>;

class lifecycle {
public:
  /// Blocks the handled signals in the calling thread and starts the signal thread.
  /// Throws std::logic_error if another lifecycle exists, std::invalid_argument on bad
  /// options, std::system_error if the OS refuses (signalfd, eventfd, thread).
  explicit lifecycle(options opts = {});
  /// Stops the signal thread and restores the signal mask of the constructing thread.
  ~lifecycle();
  lifecycle(const lifecycle&) = delete;
  lifecycle& operator=(const lifecycle&) = delete;

  // ---- the program-wide stop signal (go-zero's Done()) ----

  /// Requested once a stop begins (signal or request_stop).
  std::stop_token stop_token() const noexcept;
  /// An fd that becomes readable (and stays readable) once a stop begins: poll/epoll it or
  /// wrap it in an Asio descriptor and async_wait for read. Never read from it.
  int stop_fd() const noexcept;
  /// True once a stop begins.
  bool stop_requested() const noexcept;
  /// Blocks until a stop begins or `d` passes. Returns stop_requested().
  bool wait_for_stop(graceful::deadline d = {}) const;

  /// Starts the stop sequence from code, exactly as SIGTERM does. Later calls only log.
  void request_stop(std::string_view reason, stop_options so = {});

  // ---- hooks (each returns an RAII registration) ----

  /// Runs when draining begins, concurrently with the drain delay (e.g. deregister from
  /// service discovery). The shutdown phase starts when both are over.
  registration on_drain(std::string name, hook h);
  /// Runs in the shutdown phase: stop accepting, finish in-flight work.
  registration on_shutdown(std::string name, hook h);
  /// Runs after every shutdown hook has returned: close database and queue clients,
  /// flush logs. Nothing still serves requests by then.
  registration on_cleanup(std::string name, hook h);
  /// Called whenever the phase changes, with the new phase (draining, shutting_down,
  /// cleanup, exited), on the thread that calls run(), before that phase's hooks start.
  registration on_phase(std::string name, std::function<void(phase)> f);
  /// Called on the lifecycle's thread when `signo` arrives. Only SIGHUP, SIGUSR1 and SIGUSR2
  /// are accepted (std::invalid_argument otherwise); handlers for SIGUSR1/2 run in addition
  /// to the built-in dump/profiler.
  registration on_signal(int signo, std::string name, std::function<void()> f);
  /// Adds a named section to every SIGUSR1 dump.
  registration add_dump_section(std::string name, dump_section f);

  // ---- state ----

  /// The current phase.
  phase current_phase() const noexcept;
  /// True while running; false from the moment draining begins (for /readyz).
  bool ready() const noexcept;
  /// The options in force (program_name and diag_dir resolved).
  const options& config() const noexcept;

  /// Waits for a stop, then runs draining, shutting_down and cleanup, and returns the exit
  /// code: stop_options::exit_code (0) after a clean stop. If the deadline passes first, or
  /// a second SIGTERM/SIGINT arrives, the process exits from the lifecycle's thread and
  /// run() never returns: the log names the hooks still running.
  int run();

  // ---- diagnostics from code (the same as SIGUSR1 / SIGUSR2) ----

  /// Writes `<program>-<pid>-threads-<MMDDhhmmss>.dump` in diag_dir; returns its path.
  result<std::filesystem::path> dump_threads();
  /// Starts a profile (returns the .pprof path it writes) or stops the running one
  /// (returns the path it flushed).
  result<std::filesystem::path> toggle_profiler();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace graceful::lifecycle
