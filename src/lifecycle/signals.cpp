// The lifecycle thread: reads the signalfd, enforces the stop deadline, stops a forgotten
// profile, and makes the forced exits (second signal, deadline).
#include "impl.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fmt/format.h>

namespace graceful::lifecycle {

using detail::clock;

namespace detail {

std::string_view signal_name(int signo) {
  switch (signo) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
  }
  return "signal";
}

} // namespace detail

// Exits now with `code`, after logging `last_words` and flushing the logs if that is done
// within exit_flush_budget. The writing happens on a detached thread: a sink blocked on a
// full pipe (stderr read by a process that stopped reading), or another thread holding a
// sink's mutex while blocked in write(2), must not turn the guaranteed exit into a hang.
void lifecycle::impl::exit_now(int code, spdlog::level::level_enum level, std::string last_words) {
  struct flushed {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
  };
  auto f = std::make_shared<flushed>();
  try {
    std::thread([f, lg = log, level, text = std::move(last_words)] {
      lg->log(level, text);
      lg->flush();
      spdlog::default_logger_raw()->flush();
      std::fflush(nullptr);
      std::lock_guard lk(f->m);
      f->done = true;
      f->cv.notify_all();
    }).detach();
    std::unique_lock lk(f->m);
    f->cv.wait_for(lk, detail::exit_flush_budget, [&] { return f->done; });
  } catch (...) {
    // No thread to write with (resource exhaustion): exit without the last line.
  }
  // _Exit: no static destructors or atexit handlers, which could block on hook threads
  // (or on the writer thread above, still stuck in a sink).
  std::_Exit(code);
}

void lifecycle::impl::loop() {
  for (;;) {
    int timeout_ms = next_timeout_ms();
    pollfd fds[2] = {{wake_fd.get(), POLLIN, 0}, {signal_fd.get(), POLLIN, 0}};
    int n = ::poll(fds, signal_fd.get() >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR) {
      log->error("lifecycle thread: poll failed: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      std::uint64_t v;
      [[maybe_unused]] auto r = ::read(wake_fd.get(), &v, sizeof v);
    }
    {
      std::lock_guard lk(m);
      if (quit) return;
    }
    if (n > 0 && signal_fd.get() >= 0 && (fds[1].revents & POLLIN)) read_signals();
    check_deadline();
    check_profile_limit();
  }
}

int lifecycle::impl::next_timeout_ms() {
  graceful::deadline d;
  if (stopping.load() && current.load() != phase::exited) {
    std::lock_guard lk(m);
    d = stop_deadline;
  }
  {
    std::lock_guard lk(profiler_m);
    d = earliest(d, profile_deadline);
  }
  if (d.is_never()) return -1;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d.remaining()).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

void lifecycle::impl::read_signals() { read_signals(signal_fd.get()); }

void lifecycle::impl::read_signals(int fd) {
  signalfd_siginfo si;
  while (::read(fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    on_signal(static_cast<int>(si.ssi_signo), static_cast<pid_t>(si.ssi_pid));
  }
}

void lifecycle::impl::on_signal(int signo, pid_t sender) {
  switch (signo) {
    case SIGTERM:
    case SIGINT:
      if (current.load() == phase::exited) {
        // The stop is complete and run() has its exit code: a late signal (say, queued
        // behind a slow SIGUSR1 dump) must not turn a clean 0 into 128+signo.
        log->info("{} (from pid {}) after the stop completed: ignored", detail::signal_name(signo), sender);
        return;
      }
      if (stopping.load()) {
        int code = 128 + signo;
        exit_now(code, spdlog::level::warn,
                 fmt::format("second {} (from pid {}) while stopping: exiting now with code {}",
                             detail::signal_name(signo), sender, code));
      }
      begin_stop(fmt::format("{} from pid {}", detail::signal_name(signo), sender), {});
      return;
    case SIGHUP:
      if (!call_signal_handlers(reg->sighup, "SIGHUP"))
        log->info("SIGHUP (from pid {}) ignored: no handler registered", sender);
      return;
    case SIGUSR1: {
      log->info("SIGUSR1 (from pid {}): dumping threads", sender);
      auto r = dump();
      if (r) log->info("thread dump written to {}", r.value().string());
      else log->error("thread dump failed: {}", r.error().message());
      call_signal_handlers(reg->sigusr1, "SIGUSR1");
      return;
    }
    case SIGUSR2: {
      auto r = toggle_profile();
      if (!r) log->error("cpu profiler toggle failed: {}", r.error().message());
      call_signal_handlers(reg->sigusr2, "SIGUSR2");
      return;
    }
  }
}

bool lifecycle::impl::call_signal_handlers(detail::slot_list<detail::void_fn>& list, std::string_view sig) {
  auto items = list.snapshot();
  bool any = false;
  for (auto& s : items) {
    std::lock_guard call(s->m);
    if (!s->fn) continue;
    any = true;
    try {
      s->fn();
    } catch (const std::exception& e) {
      log->error("{} handler {} threw: {}", sig, s->name, e.what());
    } catch (...) {
      log->error("{} handler {} threw a non-standard exception", sig, s->name);
    }
  }
  return any;
}

void lifecycle::impl::check_deadline() {
  if (!stopping.load() || current.load() == phase::exited) return;
  std::string names;
  {
    std::lock_guard lk(m);
    if (!stop_deadline.expired()) return;
    for (auto& [n, c] : running_hooks) {
      if (!names.empty()) names += ", ";
      names += n;
    }
  }
  std::chrono::milliseconds delay;
  {
    std::lock_guard lk(m);
    delay = drain_delay;
  }
  exit_now(opts.deadline_exit_code, spdlog::level::err,
           fmt::format("shutdown deadline ({} after stop) passed in phase {}; hooks still running: {}; "
                       "exiting with code {}",
                       detail::fmt_dur(delay + opts.shutdown_timeout), to_string(current.load()),
                       names.empty() ? std::string("none") : names, opts.deadline_exit_code));
}

void lifecycle::impl::check_profile_limit() {
  {
    std::lock_guard lk(profiler_m);
    if (!profile_path || !profile_deadline.expired()) return;
  }
  log->info("cpu profile reached its limit of {}s", opts.profile_limit.count());
  auto r = toggle_profile(/*stop_only=*/true);
  if (!r) log->error("cpu profile stop failed: {}", r.error().message());
}

} // namespace graceful::lifecycle
