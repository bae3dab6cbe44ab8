// The lifecycle's construction, its public API and the ordered stop sequence run() walks.
// The lifecycle thread is in signals.cpp, the diagnostics in diagnostics.cpp; impl.hpp says
// which thread does what.
#include "impl.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <graceful/core/duration.hpp>
#include <graceful/diag/cpu_profiler.hpp>

namespace graceful::lifecycle {

using detail::clock;
using detail::fmt_dur;

namespace {

std::atomic<bool> g_exists{false};

} // namespace

namespace detail {

std::string fmt_dur(clock::duration d) {
  return format_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

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

} // namespace detail

bool lifecycle::impl::begin_stop(std::string_view why, stop_options so) {
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
  detail::signal_eventfd(stop_fd.get());
  stop_source.request_stop();
  cv.notify_all();
  wake();
  return true;
}

void lifecycle::impl::enter_phase(phase p) {
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

std::vector<std::thread> lifecycle::impl::run_hooks(detail::slot_list<hook>& list, phase p, graceful::deadline d,
                                                  std::size_t& count) {
  auto items = list.snapshot();
  count = items.size();
  auto call = [this, d](const detail::slot_ptr<hook>& s, const std::string& label) {
    auto t0 = clock::now();
    {
      std::lock_guard in_call(s->m);
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
  };
  std::vector<std::string> labels;
  for (auto& s : items) {
    labels.push_back(fmt::format("{}/{}", to_string(p), s->name));
    std::lock_guard lk(m);
    running_hooks.emplace(labels.back(), 1);
  }
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i + 1 < items.size(); ++i)
    threads.emplace_back([call, s = items[i], label = labels[i]] { call(s, label); });
  // The last one here: this thread would only wait for it, and on a loaded machine every
  // thread started and joined can wait a scheduler tick (~4 ms) to run.
  if (!items.empty()) call(items.back(), labels.back());
  return threads;
}

void lifecycle::impl::join_all(std::vector<std::thread>& ts) {
  for (auto& t : ts) t.join();
  ts.clear();
}

std::optional<options_error> validate(const options& o) {
  auto bad = [](std::string field, std::string rule) {
    return options_error{field, "lifecycle::options::" + field + " " + rule};
  };
  if (o.drain_delay.count() < 0) return bad("drain_delay", "must not be negative");
  if (o.shutdown_timeout.count() <= 0) return bad("shutdown_timeout", "must be positive");
  if (o.profile_limit.count() <= 0) return bad("profile_limit", "must be positive");
  return std::nullopt;
}

lifecycle::lifecycle(options opts) {
  if (g_exists.exchange(true)) throw std::logic_error("graceful::lifecycle: only one lifecycle may exist per process");
  try {
    if (auto bad = validate(opts)) throw std::invalid_argument(bad->message);
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
      for (int s : detail::handled_signals) sigaddset(&I.handled, s);
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
      sigset_t stop_set;
      sigemptyset(&stop_set);
      sigaddset(&stop_set, SIGTERM);
      sigaddset(&stop_set, SIGINT);
      fd = ::signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
      if (fd < 0) {
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &I.old_mask, nullptr);
        throw std::system_error(e, std::generic_category(), "graceful::lifecycle: signalfd");
      }
      I.stop_signal_fd = unique_fd(fd);
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
      I.log->info("{} received during teardown: ignored", detail::signal_name(static_cast<int>(si.ssi_signo)));
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
  while (!I.stop_recorded && I.stop_signal_fd.get() >= 0) {
    // Wait for the stop_fd and for SIGTERM/SIGINT itself: the signal wakes this thread and
    // the lifecycle thread at once, and whichever reads it starts the stop. Waiting only for
    // the lifecycle thread's word costs a thread hand-over, which on a loaded machine can
    // wait a scheduler tick. No deadline: a stop is what ends this wait, as with the cv.
    lk.unlock();
    pollfd fds[2] = {{I.stop_fd.get(), POLLIN, 0}, {I.stop_signal_fd.get(), POLLIN, 0}};
    int r = ::poll(fds, 2, -1);
    if (r < 0 && errno != EINTR) {
      // Not expected (EFAULT, ENOMEM): the lifecycle thread still reads every signal.
      I.log->error("run: poll failed: {}; waiting for the lifecycle thread", std::strerror(errno));
      lk.lock();
      break;
    }
    if (r > 0 && (fds[1].revents & POLLIN)) I.read_signals(I.stop_signal_fd.get());
    lk.lock();
  }
  I.cv.wait(lk, [&] { return I.stop_recorded; });
  const auto stop_time = I.stop_time;
  const auto drain_delay = I.drain_delay;
  const auto d = I.stop_deadline;
  const int code = I.exit_code;
  lk.unlock();

  // draining: the drain delay and the drain hooks run side by side; the phase ends when both are over.
  auto t = clock::now();
  I.enter_phase(phase::draining);
  std::size_t n = 0;
  auto hooks = I.run_hooks(I.reg->drain, phase::draining, d, n);
  {
    // A timed wait, not a sleep: teardown (quit) cuts it, and so does the deadline watcher
    // (which exits the process). A second SIGTERM exits from the lifecycle thread.
    std::unique_lock wl(I.m);
    I.cv.wait_until(wl, stop_time + drain_delay, [&] { return I.quit; });
  }
  impl::join_all(hooks);
  I.log->info("phase draining finished in {} (drain delay {}, {} hooks)", fmt_dur(clock::now() - t),
              fmt_dur(drain_delay), n);

  // shutting_down: ends the instant the last shutdown hook returns.
  t = clock::now();
  I.enter_phase(phase::shutting_down);
  hooks = I.run_hooks(I.reg->shutdown, phase::shutting_down, d, n);
  impl::join_all(hooks);
  I.log->info("phase shutting_down finished in {} ({} hooks)", fmt_dur(clock::now() - t), n);

  // cleanup: only now is nothing serving any more.
  t = clock::now();
  I.enter_phase(phase::cleanup);
  hooks = I.run_hooks(I.reg->cleanup, phase::cleanup, d, n);
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
