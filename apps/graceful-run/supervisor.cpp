#include "supervisor.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <graceful/upgrade/systemd.hpp>
#include <unistd.h>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <graceful/core/duration.hpp>

#include "proc.hpp"

namespace graceful::run {
namespace {

using namespace std::chrono_literals;

// Each probe gets this long before it counts as "not ready" and the next one is sent.
constexpr auto probe_timeout = 1s;
// After the stop deadline SIGKILLs everything, how long to wait for the kernel to deliver
// the exits before giving up on a process stuck in uninterruptible sleep.
constexpr auto kill_grace = 2s;

std::string signame(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

// The status as a shell reports it: the exit code, or 128 + the signal number.
int shell_status(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

std::string describe(int st) {
  if (WIFEXITED(st)) return fmt::format("exited with code {}", WEXITSTATUS(st));
  return fmt::format("was killed by {}", signame(WTERMSIG(st)));
}

std::string ms(supervisor::clock::duration d) {
  return graceful::format_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(d)));
}

std::string ns(std::chrono::nanoseconds d) { return graceful::format_duration(d); }

} // namespace

supervisor::supervisor(run_options opts, std::vector<listener> listeners, notify_socket notify,
                       unique_fd signals, std::shared_ptr<spdlog::logger> log)
    : opts_(std::move(opts)), listeners_(std::move(listeners)), notify_(std::move(notify)),
      signals_(std::move(signals)), log_(std::move(log)),
      backoff_(std::chrono::duration_cast<clock::duration>(opts_.restart_backoff)) {}

supervisor::worker* supervisor::find(pid_t pid) {
  for (auto& w : workers_)
    if (w.proc.pid() == pid) return &w;
  return nullptr;
}

supervisor::worker* supervisor::with_role(role r) {
  for (auto& w : workers_)
    if (w.r == r) return &w;
  return nullptr;
}

supervisor::worker* supervisor::awaiting_readiness() {
  for (auto& w : workers_)
    if (w.r != role::draining && !w.ready) return &w;
  return nullptr;
}

void supervisor::sd_notify(const char* state) {
  // Tell a systemd (Type=notify) above us; a no-op without NOTIFY_SOCKET in our environment.
  graceful::upgrade::notify_systemd(state);
}

bool supervisor::start_worker(role r) {
  spawn_request req{opts_.command, &listeners_, notify_.address()};
  auto p = spawn(req);
  if (!p) {
    log_->error("cannot start {}: {}", opts_.command.front(), p.error().message());
    last_status_ = 127;
    return false;
  }
  worker w;
  w.proc = std::move(p).value();
  w.generation = ++generation_;
  w.r = r;
  w.started = clock::now();
  if (r == role::candidate)
    w.ready_by = w.started + std::chrono::duration_cast<clock::duration>(opts_.upgrade_timeout);
  log_->info("worker {} started (generation {}{})", w.proc.pid(), w.generation,
             r == role::candidate ? ", upgrade" : "");
  workers_.push_back(std::move(w));
  next_probe_ = clock::now();
  return true;
}

int supervisor::run() {
  if (!start_worker(role::current)) return 127;
  while (true) {
    if (stopping_ && workers_.empty()) {
      handle_orphans();
      if (children_of(::getpid()).empty()) break;
      if (orphans_killed_ && clock::now() > stop_deadline_ + kill_grace) {
        log_->error("processes left behind did not exit after SIGKILL; exiting anyway");
        break;
      }
    }
    std::vector<pollfd> fds{{signals_.get(), POLLIN, 0}, {notify_.fd(), POLLIN, 0}};
    if (probe_) fds.push_back({probe_->fd(), probe_->events(), 0});
    auto now = clock::now();
    auto next = next_timer();
    int timeout = -1;
    if (next != clock::time_point::max()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(std::max(next - now, clock::duration{}));
      timeout = static_cast<int>(std::min<std::int64_t>(left.count(), 60'000));
    }
    if (stopping_ && workers_.empty()) timeout = timeout < 0 ? 50 : std::min(timeout, 50);
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      log_->critical("poll: {}", std::strerror(errno));
      break;
    }
    // Notify messages first: a READY=1 sent before a SIGHUP or an exit counts before them.
    if (n > 0 && (fds[1].revents & POLLIN)) {
      while (auto m = notify_.receive()) on_notify(*m);
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si[16];
      ssize_t r = ::read(signals_.get(), si, sizeof si);
      for (ssize_t i = 0; r > 0 && i < r / static_cast<ssize_t>(sizeof si[0]); ++i) on_signal(si[i]);
    }
    if (n > 0 && probe_ && fds.size() > 2 && fds[2].revents) poll_probe(fds[2].revents);
    on_timers();
  }
  if (exit_status_) return *exit_status_;
  return last_status_.value_or(0);
}

void supervisor::on_signal(const signalfd_siginfo& si) {
  int sig = static_cast<int>(si.ssi_signo);
  switch (sig) {
  case SIGCHLD: reap(); break;
  case SIGHUP: on_sighup(); break;
  case SIGTERM:
  case SIGINT:
  case SIGQUIT: begin_stop(sig); break;
  case SIGUSR1:
  case SIGUSR2:
    // Diagnostics (graceful-server: stack dump, CPU profile) are for the serving worker.
    if (auto* w = with_role(role::current)) {
      log_->info("{}: forwarding to worker {}", signame(sig), w->proc.pid());
      w->proc.signal(sig);
    }
    break;
  default: break;
  }
}

void supervisor::on_sighup() {
  if (stopping_) {
    log_->warn("SIGHUP refused: stopping");
    return;
  }
  if (auto* c = with_role(role::candidate)) {
    log_->warn("SIGHUP refused: an upgrade is in progress (worker {} is not ready yet)", c->proc.pid());
    return;
  }
  auto* cur = with_role(role::current);
  if (!cur) {
    log_->warn("SIGHUP refused: no worker is running (a restart is pending)");
    return;
  }
  if (!cur->ready) {
    log_->warn("SIGHUP refused: worker {} is not ready yet (it has not sent READY=1 to "
               "$NOTIFY_SOCKET; for servers that do not, use --ready-url or --ready-after)",
               cur->proc.pid());
    return;
  }
  log_->info("SIGHUP: upgrading worker {}", cur->proc.pid());
  sd_notify("RELOADING=1");
  if (!start_worker(role::candidate)) {
    log_->warn("upgrade failed: the new worker could not be started; keeping worker {}",
               cur->proc.pid());
    sd_notify("READY=1");
  }
}

void supervisor::begin_stop(int sig) {
  if (!stopping_) {
    stopping_ = true;
    stop_deadline_ = clock::now() + std::chrono::duration_cast<clock::duration>(opts_.shutdown_timeout);
    restart_at_.reset();
    probe_.reset();
    // The workers hold their own copies; ours only kept connections queueing while no
    // worker accepted. Closing them now lets the sockets close with the last worker.
    listeners_.clear();
    if (auto* c = with_role(role::current)) primary_ = c->proc.pid();
    else if (auto* n = with_role(role::candidate)) primary_ = n->proc.pid();
    sd_notify("STOPPING=1");
    std::string pids;
    for (auto& w : workers_) pids += fmt::format("{}{}", pids.empty() ? "" : ", ", w.proc.pid());
    log_->info("{}: stopping (worker{} {}; shutdown timeout {})",
               sig == 0 ? std::string("the worker exited") : signame(sig),
               workers_.size() == 1 ? "" : "s", pids.empty() ? "none" : pids,
               ns(opts_.shutdown_timeout));
  } else {
    log_->info("{}: forwarding again to the workers still running", signame(sig));
  }
  for (auto& w : workers_) {
    if (w.r == role::draining && w.kill_at != clock::time_point::max()) {
      // Already told to stop by an upgrade; its earlier deadline stands.
      continue;
    }
    w.proc.signal(sig == 0 ? SIGTERM : sig);
    w.told_to_stop = clock::now();
    w.kill_at = std::min(w.kill_at, stop_deadline_);
  }
}

void supervisor::reap() {
  // One SIGCHLD may stand for many exits (signals do not queue), so reap until none is left:
  // workers, and orphans re-parented to us as PID 1 or as a child subreaper.
  while (true) {
    int st = 0;
    pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid <= 0) break;
    on_exit(pid, st);
  }
}

void supervisor::on_exit(pid_t pid, int st) {
  auto it = std::find_if(workers_.begin(), workers_.end(),
                         [&](const worker& w) { return w.proc.pid() == pid; });
  if (it == workers_.end()) {
    log_->debug("reaped process {} ({})", pid, describe(st));
    return;
  }
  it->proc.release();
  worker w = std::move(*it);
  workers_.erase(it);
  if (probe_for_ == pid) {
    probe_.reset();
    probe_for_ = -1;
  }
  auto lived = clock::now() - w.started;
  int status = shell_status(st);
  if (pid == primary_) exit_status_ = status;

  if (stopping_) {
    log_->info("worker {} {} after {}", pid, describe(st), ms(lived));
    if (primary_ < 0) last_status_ = status;
    return;
  }
  switch (w.r) {
  case role::draining:
    log_->info("old worker {} {} ({} after it was told to stop)", pid, describe(st),
               ms(clock::now() - w.told_to_stop));
    return;
  case role::candidate:
    if (auto* cur = with_role(role::current)) {
      log_->warn("upgrade failed: new worker {} {} before it was ready; keeping worker {}", pid,
                 describe(st), cur->proc.pid());
      sd_notify("READY=1");
    } else {
      log_->warn("new worker {} {} before it was ready, and no old worker is left", pid, describe(st));
      last_status_ = status;
      schedule_restart(lived);
    }
    return;
  case role::current:
    last_status_ = status;
    if (opts_.restart == restart_policy::never ||
        (opts_.restart == restart_policy::on_failure && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      log_->info("worker {} {}; not restarting it (--restart {})", pid, describe(st),
                 opts_.restart == restart_policy::never ? "never" : "on-failure");
      exit_status_ = status;
      begin_stop(0);
      return;
    }
    if (auto* c = with_role(role::candidate)) {
      log_->warn("worker {} {} during an upgrade; worker {} takes over once ready", pid,
                 describe(st), c->proc.pid());
      return;
    }
    log_->warn("worker {} {} unexpectedly after {}", pid, describe(st), ms(lived));
    schedule_restart(lived);
    return;
  }
}

void supervisor::schedule_restart(clock::duration lived) {
  auto first = std::chrono::duration_cast<clock::duration>(opts_.restart_backoff);
  auto cap = std::chrono::duration_cast<clock::duration>(opts_.restart_backoff_max);
  if (lived >= opts_.healthy_after) backoff_ = first;
  auto delay = std::min(backoff_, cap);
  restart_at_ = clock::now() + delay;
  backoff_ = std::min(std::max(backoff_ * 2, first), cap);
  log_->info("restarting the worker in {}; the listening sockets stay open meanwhile", ms(delay));
}

void supervisor::on_notify(const notify_message& m) {
  worker* w = nullptr;
  for (auto& c : workers_) {
    if (c.r == role::draining) continue;
    // The worker itself, or a process it started (e.g. systemd-notify(1) from a script).
    if (m.sender == c.proc.pid() || (m.sender > 0 && descends_from(m.sender, c.proc.pid()))) {
      w = &c;
      break;
    }
  }
  for (auto& a : m.assignments) {
    if (!w) {
      log_->debug("ignored notify message \"{}\" from process {}, not a worker", a, m.sender);
      continue;
    }
    if (a == "READY=1") mark_ready(*w, "READY=1");
    else if (a.starts_with("STATUS=")) log_->info("worker {} status: {}", w->proc.pid(), a.substr(7));
    else log_->debug("worker {} notify: {}", w->proc.pid(), a);
  }
}

void supervisor::mark_ready(worker& w, const char* how) {
  if (w.ready) return;
  w.ready = true;
  if (probe_for_ == w.proc.pid()) {
    probe_.reset();
    probe_for_ = -1;
  }
  log_->info("worker {} ready ({}) after {}", w.proc.pid(), how, ms(clock::now() - w.started));
  if (w.r == role::candidate) {
    w.r = role::current;
    w.ready_by = clock::time_point::max();
    worker* old = nullptr;
    for (auto& o : workers_)
      if (&o != &w && o.r == role::current) old = &o;
    if (old) {
      retire(*old, "replaced");
      log_->info("upgrade complete: worker {} replaced worker {}", w.proc.pid(), old->proc.pid());
    } else {
      log_->info("upgrade complete: worker {} serving", w.proc.pid());
    }
    sd_notify("READY=1");
  } else if (!told_systemd_ready_) {
    told_systemd_ready_ = true;
    sd_notify("READY=1");
  }
}

void supervisor::retire(worker& w, const char* why) {
  w.r = role::draining;
  w.ready_by = clock::time_point::max();
  w.told_to_stop = clock::now();
  w.kill_at = w.told_to_stop + std::chrono::duration_cast<clock::duration>(opts_.shutdown_timeout);
  log_->info("SIGTERM to worker {} ({}); it has {} to drain", w.proc.pid(), why,
             ns(opts_.shutdown_timeout));
  w.proc.signal(SIGTERM);
}

supervisor::clock::time_point supervisor::next_timer() const {
  auto t = clock::time_point::max();
  if (restart_at_) t = std::min(t, *restart_at_);
  for (auto& w : workers_) {
    t = std::min({t, w.kill_at, w.ready_by});
    if (!w.ready && w.r != role::draining && opts_.ready_after > 0s)
      t = std::min(t, w.started + std::chrono::duration_cast<clock::duration>(opts_.ready_after));
  }
  if (opts_.ready_url && !stopping_) {
    bool waiting = false;
    for (auto& w : workers_) waiting = waiting || (!w.ready && w.r != role::draining);
    if (waiting) t = std::min(t, probe_ ? probe_deadline_ : next_probe_);
  }
  if (stopping_) t = std::min(t, stop_deadline_);
  return t;
}

void supervisor::poll_probe(short /*revents*/) {
  auto outcome = probe_->advance();
  if (outcome == http_probe::outcome::pending) return;
  pid_t pid = probe_for_;
  std::string why = probe_->why();
  probe_.reset();
  probe_for_ = -1;
  next_probe_ = clock::now() + std::chrono::duration_cast<clock::duration>(opts_.ready_poll_interval);
  auto* w = find(pid);
  if (!w) return;
  if (outcome == http_probe::outcome::ready) {
    mark_ready(*w, opts_.ready_url->text.c_str());
  } else if (why != last_probe_failure_) {
    last_probe_failure_ = why;
    log_->debug("worker {} not ready yet: {} {}", pid, opts_.ready_url->text, why);
  }
}

void supervisor::on_timers() {
  auto now = clock::now();

  if (restart_at_ && now >= *restart_at_) {
    restart_at_.reset();
    if (!start_worker(role::current)) schedule_restart(0s);
  }

  for (auto& w : workers_) {
    if (w.r == role::candidate && now >= w.ready_by) {
      auto* cur = with_role(role::current);
      log_->warn("upgrade failed: new worker {} was not ready within --upgrade-timeout {} (does it "
                 "send READY=1 to $NOTIFY_SOCKET? else see --ready-url, --ready-after); keeping "
                 "worker {}",
                 w.proc.pid(), ns(opts_.upgrade_timeout), cur ? std::to_string(cur->proc.pid()) : "none");
      // It may already be serving connections it accepted: stop it gently, with a deadline.
      retire(w, "not ready in time");
      sd_notify("READY=1");
      if (!cur) schedule_restart(0s);
    }
    if (!w.ready && w.r != role::draining && opts_.ready_after > 0s &&
        now >= w.started + std::chrono::duration_cast<clock::duration>(opts_.ready_after))
      mark_ready(w, "--ready-after");
    if (now >= w.kill_at) {
      log_->warn("worker {} still running {} after SIGTERM; SIGKILL to its process group",
                 w.proc.pid(), ns(opts_.shutdown_timeout));
      w.proc.kill_group();
      w.kill_at = clock::time_point::max();
    }
  }

  // Readiness by URL: one probe at a time, for the one worker waiting to be ready.
  if (opts_.ready_url && !stopping_ && !probe_ && now >= next_probe_) {
    if (auto* w = awaiting_readiness()) {
      auto p = http_probe::start(*opts_.ready_url);
      if (p) {
        probe_ = std::move(p).value();
        probe_for_ = w->proc.pid();
        probe_deadline_ = now + probe_timeout;
      } else {
        next_probe_ = now + std::chrono::duration_cast<clock::duration>(opts_.ready_poll_interval);
      }
    }
  } else if (probe_ && now >= probe_deadline_) {
    probe_.reset();
    probe_for_ = -1;
    next_probe_ = now + std::chrono::duration_cast<clock::duration>(opts_.ready_poll_interval);
  }

  if (stopping_ && now >= stop_deadline_) {
    for (auto& w : workers_) {
      if (w.kill_at != clock::time_point::max()) {
        log_->warn("worker {} still running at the shutdown deadline; SIGKILL to its process group",
                   w.proc.pid());
        w.proc.kill_group();
        w.kill_at = clock::time_point::max();
      }
    }
  }
}

void supervisor::handle_orphans() {
  // Processes the workers left behind were re-parented to us (PID 1, or
  // PR_SET_CHILD_SUBREAPER). Exiting would leave them to the next reaper up — or, as PID 1
  // of a container, have the kernel SIGKILL them without warning. Ask them to stop first.
  auto now = clock::now();
  auto kids = children_of(::getpid());
  if (kids.empty()) return;
  if (!orphans_signalled_) {
    orphans_signalled_ = true;
    log_->info("SIGTERM to {} process{} the workers left behind", kids.size(),
               kids.size() == 1 ? "" : "es");
    for (pid_t p : kids) ::kill(p, SIGTERM);
  } else if (!orphans_killed_ && now >= stop_deadline_) {
    orphans_killed_ = true;
    log_->warn("SIGKILL to {} process{} still running at the shutdown deadline", kids.size(),
               kids.size() == 1 ? "" : "es");
    for (pid_t p : kids) ::kill(p, SIGKILL);
  }
  reap();
}

} // namespace graceful::run
