// The lifecycle: one signal thread, a stop source, and the ordered stop sequence.
//
// Threads:
//  - the lifecycle thread (started by the constructor) reads the signalfd, runs the
//    SIGUSR1 dump / SIGUSR2 profiler / on_signal handlers, enforces the stop deadline and
//    stops a forgotten profile. It exists even with handle_signals=false (for the deadline).
//  - run() (normally main) walks the phases and waits for the hooks.
//  - each hook runs on its own thread, so one slow hook never delays the others.
#include <graceful/lifecycle/lifecycle.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <graceful/core/duration.hpp>
#include <graceful/diag/cpu_profiler.hpp>
#include <graceful/diag/errc.hpp>
#include <graceful/diag/thread_dump.hpp>

namespace graceful::lifecycle {
namespace {

using clock = graceful::deadline::clock;

std::atomic<bool> g_exists{false};

// How long a forced exit (deadline, second signal) waits for its last log line and the
// flush of every log and stdio stream before it exits anyway. Long enough for a healthy sink
// (a terminal, a file, journald) to take a line; short against any shutdown timeout.
constexpr std::chrono::milliseconds exit_flush_budget{500};

// The signals the lifecycle owns. SIGPROF is deliberately absent: gperftools samples with it.
constexpr int handled_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

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

std::string fmt_dur(clock::duration d) {
  return format_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) { reset(); fd_ = std::exchange(o.fd_, -1); }
    return *this;
  }
  ~unique_fd() { reset(); }
  void reset() noexcept { if (fd_ >= 0) ::close(fd_); fd_ = -1; }
  int get() const noexcept { return fd_; }
private:
  int fd_ = -1;
};

unique_fd make_eventfd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "graceful::lifecycle: eventfd");
  return unique_fd(fd);
}

void signal_eventfd(int fd) noexcept {
  std::uint64_t one = 1;
  // EAGAIN only when the counter is saturated: it is readable then anyway.
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
}

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

} // namespace

struct lifecycle::impl {
  options opts;
  std::shared_ptr<spdlog::logger> log;

  std::stop_source stop_source;
  unique_fd stop_fd = make_eventfd();
  unique_fd wake_fd = make_eventfd();
  unique_fd signal_fd;
  sigset_t handled{};
  sigset_t old_mask{};
  bool mask_changed = false;
  pthread_t ctor_thread = pthread_self();

  // Registrations hand out pointers into this; keep it alive while any registration exists.
  std::shared_ptr<registry> reg = std::make_shared<registry>();

  mutable std::mutex m;
  mutable std::condition_variable cv;
  std::atomic<phase> current{phase::running};
  std::atomic<bool> stopping{false};
  bool stop_recorded = false;  // guarded by m: the fields below are written
  bool run_called = false;
  bool quit = false;
  // The stop in progress (guarded by m once `stopping` is set).
  std::string reason;
  clock::time_point stop_time{};
  std::chrono::milliseconds drain_delay{0};
  int exit_code = 0;
  graceful::deadline stop_deadline{};
  std::multimap<std::string, int> running_hooks;  // "phase/name" -> count

  std::mutex profiler_m;
  graceful::deadline profile_deadline{};  // guarded by profiler_m; never when none runs
  std::optional<std::filesystem::path> profile_path;

  std::thread thread;

  void wake() noexcept { signal_eventfd(wake_fd.get()); }

  // Exits now with `code`, after logging `last_words` and flushing the logs if that is done
  // within exit_flush_budget. The writing happens on a detached thread: a sink blocked on a
  // full pipe (stderr read by a process that stopped reading), or another thread holding a
  // sink's mutex while blocked in write(2), must not turn the guaranteed exit into a hang.
  [[noreturn]] void exit_now(int code, spdlog::level::level_enum level, std::string last_words) {
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
      f->cv.wait_for(lk, exit_flush_budget, [&] { return f->done; });
    } catch (...) {
      // No thread to write with (resource exhaustion): exit without the last line.
    }
    // _Exit: no static destructors or atexit handlers, which could block on hook threads
    // (or on the writer thread above, still stuck in a sink).
    std::_Exit(code);
  }

  bool begin_stop(std::string_view why, stop_options so) {
    bool expected = false;
    if (!stopping.compare_exchange_strong(expected, true)) {
      log->info("stop already in progress; ignoring stop request ({})", why);
      return false;
    }
    {
      std::lock_guard lk(m);
      reason = std::string(why);
      stop_time = clock::now();
      drain_delay = so.drain_delay.count() >= 0 ? so.drain_delay : opts.drain_delay;
      exit_code = so.exit_code;
      stop_deadline = graceful::deadline(stop_time + drain_delay + opts.shutdown_timeout);
      current.store(phase::draining);  // readiness false at once, before run() even wakes
      stop_recorded = true;
    }
    log->info("stop requested ({}): drain delay {}, shutdown timeout {}", why, fmt_dur(drain_delay),
              fmt_dur(opts.shutdown_timeout));
    signal_eventfd(stop_fd.get());
    stop_source.request_stop();
    cv.notify_all();
    wake();
    return true;
  }

  // ---- lifecycle thread ----

  void loop() {
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

  int next_timeout_ms() {
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

  void read_signals() {
    signalfd_siginfo si;
    while (::read(signal_fd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      on_signal(static_cast<int>(si.ssi_signo), static_cast<pid_t>(si.ssi_pid));
    }
  }

  void on_signal(int signo, pid_t sender) {
    switch (signo) {
      case SIGTERM:
      case SIGINT:
        if (current.load() == phase::exited) {
          // The stop is complete and run() has its exit code: a late signal (say, queued
          // behind a slow SIGUSR1 dump) must not turn a clean 0 into 128+signo.
          log->info("{} (from pid {}) after the stop completed: ignored", signal_name(signo), sender);
          return;
        }
        if (stopping.load()) {
          int code = 128 + signo;
          exit_now(code, spdlog::level::warn,
                   fmt::format("second {} (from pid {}) while stopping: exiting now with code {}",
                               signal_name(signo), sender, code));
        }
        begin_stop(fmt::format("{} from pid {}", signal_name(signo), sender), {});
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

  bool call_signal_handlers(slot_list<void_fn>& list, std::string_view sig) {
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

  void check_deadline() {
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
                         fmt_dur(delay + opts.shutdown_timeout), to_string(current.load()),
                         names.empty() ? std::string("none") : names, opts.deadline_exit_code));
  }

  void check_profile_limit() {
    {
      std::lock_guard lk(profiler_m);
      if (!profile_path || !profile_deadline.expired()) return;
    }
    log->info("cpu profile reached its limit of {}s", opts.profile_limit.count());
    auto r = toggle_profile(/*stop_only=*/true);
    if (!r) log->error("cpu profile stop failed: {}", r.error().message());
  }

  // ---- diagnostics ----

  result<std::filesystem::path> dump() {
    std::vector<diag::section> sections;
    for (auto& s : reg->sections.snapshot()) {
      std::lock_guard call(s->m);
      if (!s->fn) continue;
      try {
        sections.push_back({s->name, s->fn()});
      } catch (const std::exception& e) {
        sections.push_back({s->name, fmt::format("(section failed: {})", e.what())});
      } catch (...) {
        sections.push_back({s->name, "(section failed)"});
      }
    }
    return diag::write_thread_dump(opts.diag_dir, opts.program_name, sections);
  }

  result<std::filesystem::path> toggle_profile(bool stop_only = false) {
    std::lock_guard lk(profiler_m);
    if (profile_path) {
      auto r = diag::stop_cpu_profile();
      profile_path.reset();
      profile_deadline = graceful::deadline::never();
      if (!r) return r;
      log->info("cpu profile stopped; written to {}", r.value().string());
      return r;
    }
    if (stop_only) return diag::errc::profiler_not_running;
    auto path = opts.diag_dir / diag::diag_file_name(opts.program_name, "cpu", "pprof");
    if (auto r = diag::start_cpu_profile(path); !r) return r.error();
    profile_path = path;
    profile_deadline = graceful::deadline::after(opts.profile_limit);
    log->info("cpu profile started: {} (stops by itself after {}s)", path.string(), opts.profile_limit.count());
    wake();
    return path;
  }

  // ---- the stop sequence ----

  void enter_phase(phase p) {
    current.store(p);
    if (p != phase::exited) log->info("phase {} started", to_string(p));
    for (auto& s : reg->phases.snapshot()) {
      std::lock_guard call(s->m);
      if (!s->fn) continue;
      try {
        s->fn(p);
      } catch (const std::exception& e) {
        log->error("phase observer {} threw: {}", s->name, e.what());
      } catch (...) {
        log->error("phase observer {} threw a non-standard exception", s->name);
      }
    }
  }

  // Starts every hook of `list` on its own thread; the caller joins them.
  std::vector<std::thread> start_hooks(slot_list<hook>& list, phase p, graceful::deadline d) {
    std::vector<std::thread> threads;
    for (auto& s : list.snapshot()) {
      std::string label = fmt::format("{}/{}", to_string(p), s->name);
      {
        std::lock_guard lk(m);
        running_hooks.emplace(label, 1);
      }
      threads.emplace_back([this, s, label, d] {
        auto t0 = clock::now();
        {
          std::lock_guard call(s->m);
          if (s->fn) {
            try {
              s->fn(d);
              log->debug("hook {} returned after {}", label, fmt_dur(clock::now() - t0));
            } catch (const std::exception& e) {
              log->error("hook {} threw after {}: {}", label, fmt_dur(clock::now() - t0), e.what());
            } catch (...) {
              log->error("hook {} threw a non-standard exception", label);
            }
          }
        }
        std::lock_guard lk(m);
        running_hooks.erase(running_hooks.find(label));
      });
    }
    return threads;
  }

  static void join_all(std::vector<std::thread>& ts) {
    for (auto& t : ts) t.join();
    ts.clear();
  }
};

lifecycle::lifecycle(options opts) {
  if (g_exists.exchange(true)) throw std::logic_error("graceful::lifecycle: only one lifecycle may exist per process");
  try {
    if (opts.drain_delay.count() < 0) throw std::invalid_argument("graceful::lifecycle: drain_delay must not be negative");
    if (opts.shutdown_timeout.count() <= 0)
      throw std::invalid_argument("graceful::lifecycle: shutdown_timeout must be positive");
    if (opts.profile_limit.count() <= 0)
      throw std::invalid_argument("graceful::lifecycle: profile_limit must be positive");
    if (opts.program_name.empty()) {
      std::error_code ec;
      auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
      opts.program_name = ec ? std::string("graceful") : exe.filename().string();
    }
    if (opts.diag_dir.empty()) {
      std::error_code ec;
      opts.diag_dir = std::filesystem::temp_directory_path(ec);
      if (ec) opts.diag_dir = "/tmp";
    }
    impl_ = std::make_unique<impl>();
    impl_->log = opts.logger ? opts.logger : spdlog::default_logger();
    impl_->opts = std::move(opts);
    auto& I = *impl_;
    if (I.opts.handle_signals) {
      sigemptyset(&I.handled);
      for (int s : handled_signals) sigaddset(&I.handled, s);
      // Block before any other thread exists: threads inherit the mask (pthread_create(3)),
      // so the signals queue for the signalfd instead of running default actions.
      if (int e = pthread_sigmask(SIG_BLOCK, &I.handled, &I.old_mask); e != 0)
        throw std::system_error(e, std::generic_category(), "graceful::lifecycle: pthread_sigmask");
      I.mask_changed = true;
      int fd = ::signalfd(-1, &I.handled, SFD_CLOEXEC | SFD_NONBLOCK);
      if (fd < 0) {
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &I.old_mask, nullptr);
        throw std::system_error(e, std::generic_category(), "graceful::lifecycle: signalfd");
      }
      I.signal_fd = unique_fd(fd);
    }
    I.thread = std::thread([&I] { I.loop(); });
    I.log->debug("lifecycle of {} (pid {}) started; diagnostics in {}", I.opts.program_name, ::getpid(),
                 I.opts.diag_dir.string());
  } catch (...) {
    if (impl_ && impl_->mask_changed) pthread_sigmask(SIG_SETMASK, &impl_->old_mask, nullptr);
    impl_.reset();
    g_exists.store(false);
    throw;
  }
}

lifecycle::~lifecycle() {
  auto& I = *impl_;
  {
    std::lock_guard lk(I.m);
    I.quit = true;
  }
  I.wake();
  I.thread.join();
  {
    std::lock_guard lk(I.profiler_m);
    if (I.profile_path) {
      auto r = diag::stop_cpu_profile();
      if (r) I.log->info("cpu profile stopped at exit; written to {}", r.value().string());
      I.profile_path.reset();
    }
  }
  if (I.signal_fd.get() >= 0) {
    // Consume what is still queued: unblocking would run the default action (terminate).
    signalfd_siginfo si;
    while (::read(I.signal_fd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
      I.log->info("{} received during teardown: ignored", signal_name(static_cast<int>(si.ssi_signo)));
  }
  // The mask is per thread: it can only be restored from the thread that set it.
  if (I.mask_changed && pthread_equal(pthread_self(), I.ctor_thread))
    pthread_sigmask(SIG_SETMASK, &I.old_mask, nullptr);
  impl_.reset();
  g_exists.store(false);
}

std::stop_token lifecycle::stop_token() const noexcept { return impl_->stop_source.get_token(); }
int lifecycle::stop_fd() const noexcept { return impl_->stop_fd.get(); }
bool lifecycle::stop_requested() const noexcept { return impl_->stopping.load(); }

bool lifecycle::wait_for_stop(graceful::deadline d) const {
  auto& I = *impl_;
  std::unique_lock lk(I.m);
  auto pred = [&] { return I.stopping.load(); };
  if (d.is_never()) I.cv.wait(lk, pred);
  else I.cv.wait_until(lk, d.when(), pred);
  return I.stopping.load();
}

void lifecycle::request_stop(std::string_view reason, stop_options so) {
  if (so.drain_delay.count() < -1) so.drain_delay = std::chrono::milliseconds(-1);
  impl_->begin_stop(reason, so);
}

registration lifecycle::on_drain(std::string name, hook h) { return impl_->reg->drain.add(impl_->reg, std::move(name), std::move(h)); }
registration lifecycle::on_shutdown(std::string name, hook h) {
  return impl_->reg->shutdown.add(impl_->reg, std::move(name), std::move(h));
}
registration lifecycle::on_cleanup(std::string name, hook h) {
  return impl_->reg->cleanup.add(impl_->reg, std::move(name), std::move(h));
}
registration lifecycle::on_phase(std::string name, std::function<void(phase)> f) {
  return impl_->reg->phases.add(impl_->reg, std::move(name), std::move(f));
}
registration lifecycle::on_signal(int signo, std::string name, std::function<void()> f) {
  auto& r = *impl_->reg;
  switch (signo) {
    case SIGHUP: return r.sighup.add(impl_->reg, std::move(name), std::move(f));
    case SIGUSR1: return r.sigusr1.add(impl_->reg, std::move(name), std::move(f));
    case SIGUSR2: return r.sigusr2.add(impl_->reg, std::move(name), std::move(f));
  }
  throw std::invalid_argument(fmt::format("graceful::lifecycle::on_signal: signal {} cannot be handled; only "
                                          "SIGHUP, SIGUSR1 and SIGUSR2", signo));
}
registration lifecycle::add_dump_section(std::string name, dump_section f) {
  return impl_->reg->sections.add(impl_->reg, std::move(name), std::move(f));
}

phase lifecycle::current_phase() const noexcept { return impl_->current.load(); }
bool lifecycle::ready() const noexcept { return !impl_->stopping.load() && impl_->current.load() == phase::running; }
const options& lifecycle::config() const noexcept { return impl_->opts; }

int lifecycle::run() {
  auto& I = *impl_;
  std::unique_lock lk(I.m);
  if (I.run_called) throw std::logic_error("graceful::lifecycle::run: called twice");
  I.run_called = true;
  // stop_recorded, not stopping: the stop's details are written just after `stopping` flips.
  I.cv.wait(lk, [&] { return I.stop_recorded; });
  const auto stop_time = I.stop_time;
  const auto drain_delay = I.drain_delay;
  const auto d = I.stop_deadline;
  const int code = I.exit_code;
  lk.unlock();

  // draining: the drain delay and the drain hooks run side by side; the phase ends when both are over.
  auto t = clock::now();
  I.enter_phase(phase::draining);
  auto hooks = I.start_hooks(I.reg->drain, phase::draining, d);
  {
    // A timed wait, not a sleep: teardown (quit) cuts it, and so does the deadline watcher
    // (which exits the process). A second SIGTERM exits from the lifecycle thread.
    std::unique_lock wl(I.m);
    I.cv.wait_until(wl, stop_time + drain_delay, [&] { return I.quit; });
  }
  std::size_t n = hooks.size();
  impl::join_all(hooks);
  I.log->info("phase draining finished in {} (drain delay {}, {} hooks)", fmt_dur(clock::now() - t),
              fmt_dur(drain_delay), n);

  // shutting_down: ends the instant the last shutdown hook returns.
  t = clock::now();
  I.enter_phase(phase::shutting_down);
  hooks = I.start_hooks(I.reg->shutdown, phase::shutting_down, d);
  n = hooks.size();
  impl::join_all(hooks);
  I.log->info("phase shutting_down finished in {} ({} hooks)", fmt_dur(clock::now() - t), n);

  // cleanup: only now is nothing serving any more.
  t = clock::now();
  I.enter_phase(phase::cleanup);
  hooks = I.start_hooks(I.reg->cleanup, phase::cleanup, d);
  n = hooks.size();
  impl::join_all(hooks);
  I.log->info("phase cleanup finished in {} ({} hooks)", fmt_dur(clock::now() - t), n);

  I.enter_phase(phase::exited);
  I.log->info("exited with code {} after {} since the stop request", code, fmt_dur(clock::now() - stop_time));
  I.wake();
  return code;
}

result<std::filesystem::path> lifecycle::dump_threads() { return impl_->dump(); }
result<std::filesystem::path> lifecycle::toggle_profiler() { return impl_->toggle_profile(); }

} // namespace graceful::lifecycle
