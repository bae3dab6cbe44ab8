#pragma once
// The lifecycle's state, shared by its three files: lifecycle.cpp (construction, the public
// API and the stop sequence that run() walks), signals.cpp (the lifecycle thread: signals, the
// stop deadline, forced exits) and diagnostics.cpp (the SIGUSR1 dump and the SIGUSR2 profiler).
//
// Threads:
//  - the lifecycle thread (started by the constructor) reads the signalfd, runs the
//    SIGUSR1 dump / SIGUSR2 profiler / on_signal handlers, enforces the stop deadline and
//    stops a forgotten profile. It exists even with handle_signals=false (for the deadline).
//  - run() (normally main) walks the phases and waits for the hooks.
//  - the hooks of a phase run side by side, each but the last on its own thread, so one slow
//    hook never delays the others; the last runs on run()'s thread, which would only wait.
#include <graceful/lifecycle/lifecycle.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <signal.h>

#include <spdlog/spdlog.h>

#include <graceful/core/deadline.hpp>
#include <graceful/core/result.hpp>
#include <graceful/core/unique_fd.hpp>

namespace graceful::lifecycle {
namespace detail {

using clock = graceful::deadline::clock;

// How long a forced exit (deadline, second signal) waits for its last log line and the
// flush of every log and stdio stream before it exits anyway. Long enough for a healthy sink
// (a terminal, a file, journald) to take a line; short against any shutdown timeout.
inline constexpr std::chrono::milliseconds exit_flush_budget{500};

// The signals the lifecycle owns. SIGPROF is deliberately absent: gperftools samples with it.
inline constexpr int handled_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

std::string_view signal_name(int signo);
std::string fmt_dur(clock::duration d);
unique_fd make_eventfd();
void signal_eventfd(int fd) noexcept;

// One registered callback. Calls happen under `m`, so that unregistering waits for a call in
// progress and never returns while the callback may still touch its owner. The mutex is
// recursive so that a callback may drop its own registration.
template <class F> struct slot {
  std::string name;
  std::recursive_mutex m;
  F fn;
};
template <class F> using slot_ptr = std::shared_ptr<slot<F>>;

template <class F> struct slot_list {
  std::mutex m;
  std::vector<slot_ptr<F>> items;

  registration add(std::weak_ptr<void> owner, std::string name, F f) {
    auto s = std::make_shared<slot<F>>();
    s->name = std::move(name);
    s->fn = std::move(f);
    {
      std::lock_guard lk(m);
      items.push_back(s);
    }
    std::weak_ptr<slot<F>> weak = s;
    // `this` lives in the registry `owner`: a registration that outlives the lifecycle
    // finds it gone and does nothing.
    return registration([this, owner = std::move(owner), weak] {
      auto keep = owner.lock();
      auto sp = weak.lock();
      if (!keep) return;
      if (!sp) return;
      {
        std::lock_guard lk(m);
        std::erase(items, sp);
      }
      std::lock_guard call(sp->m);
      sp->fn = nullptr;
    });
  }
  std::vector<slot_ptr<F>> snapshot() {
    std::lock_guard lk(m);
    return items;
  }
};

using void_fn = std::function<void()>;
using phase_fn = std::function<void(phase)>;

struct registry {
  slot_list<hook> drain, shutdown, cleanup;
  slot_list<phase_fn> phases;
  slot_list<void_fn> sighup, sigusr1, sigusr2;
  slot_list<dump_section> sections;
};

} // namespace detail

struct lifecycle::impl {
  options opts;
  std::shared_ptr<spdlog::logger> log;

  std::stop_source stop_source;
  unique_fd stop_fd = detail::make_eventfd();
  unique_fd wake_fd = detail::make_eventfd();
  unique_fd signal_fd;
  // SIGTERM and SIGINT only, read by run() while it waits for the stop (lifecycle.cpp).
  unique_fd stop_signal_fd;
  sigset_t handled{};
  sigset_t old_mask{};
  bool mask_changed = false;
  pthread_t ctor_thread = pthread_self();

  // Registrations hand out pointers into this; keep it alive while any registration exists.
  std::shared_ptr<detail::registry> reg = std::make_shared<detail::registry>();

  mutable std::mutex m;
  mutable std::condition_variable cv;
  std::atomic<phase> current{phase::running};
  std::atomic<bool> stopping{false};
  bool stop_recorded = false;  // guarded by m: the fields below are written
  bool run_called = false;
  bool quit = false;
  // The stop in progress (guarded by m once `stopping` is set).
  std::string reason;
  detail::clock::time_point stop_time{};
  std::chrono::milliseconds drain_delay{0};
  int exit_code = 0;
  graceful::deadline stop_deadline{};
  std::multimap<std::string, int> running_hooks;  // "phase/name" -> count

  std::mutex profiler_m;
  graceful::deadline profile_deadline{};  // guarded by profiler_m; never when none runs
  std::optional<std::filesystem::path> profile_path;

  std::thread thread;

  void wake() noexcept { detail::signal_eventfd(wake_fd.get()); }

  // Exits now with `code`, after logging `last_words` and flushing the logs if that is done
  // within exit_flush_budget (signals.cpp).
  [[noreturn]] void exit_now(int code, spdlog::level::level_enum level, std::string last_words);
  // Records the stop and wakes everything that waits for it; false when one is in progress.
  bool begin_stop(std::string_view why, stop_options so);

  // The lifecycle thread (signals.cpp).
  void loop();
  int next_timeout_ms();
  void read_signals();
  // Reads what `fd` (a signalfd) has queued and handles each signal; signal_fd by default.
  void read_signals(int fd);
  void on_signal(int signo, pid_t sender);
  bool call_signal_handlers(detail::slot_list<detail::void_fn>& list, std::string_view sig);
  void check_deadline();
  void check_profile_limit();

  // Diagnostics (diagnostics.cpp).
  result<std::filesystem::path> dump();
  result<std::filesystem::path> toggle_profile(bool stop_only = false);

  // The stop sequence (lifecycle.cpp).
  void enter_phase(phase p);
  // Runs every hook of `list` (their number in `count`): each but the last on its own
  // thread, which the caller joins; the last on the calling thread, returning when it has.
  std::vector<std::thread> run_hooks(detail::slot_list<hook>& list, phase p, graceful::deadline d, std::size_t& count);
  static void join_all(std::vector<std::thread>& ts);
};

} // namespace graceful::lifecycle
