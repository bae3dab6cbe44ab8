#include <graceful/upgrade/upgrader.hpp>

#include <graceful/core/last_errno.hpp>
#include <graceful/core/find_executable.hpp>
#include <graceful/core/listener_name.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <graceful/upgrade/pid_file.hpp>

#include "handover.hpp"
#include <graceful/upgrade/systemd.hpp>
#include "takeover.hpp"

namespace graceful::upgrade {

std::string_view to_string(state s) noexcept {
  switch (s) {
    case state::starting: return "starting";
    case state::ready: return "ready";
    case state::upgrading: return "upgrading";
    case state::handed_over: return "handed_over";
    case state::stopping: return "stopping";
  }
  return "unknown";
}

namespace {

namespace fs = std::filesystem;

std::vector<std::string> own_cmdline() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> out;
  std::string arg;
  while (std::getline(in, arg, '\0')) out.push_back(arg);
  return out;
}

// The path the program was started from, made absolute now: deploying a new binary at that
// path (or switching a symlink there) must run the new code on the next upgrade, which
// /proc/self/exe (the old, possibly deleted, inode) would not.
std::optional<fs::path> resolve_executable(const std::string& argv0) {
  // execvp(3)'s search, as the shell that started us did it (a name with '/' is not searched).
  auto found = graceful::find_executable(argv0);
  if (!found) return std::nullopt;
  std::error_code ec;
  auto p = fs::absolute(found.value(), ec).lexically_normal();
  if (ec) return std::nullopt;
  return p;
}

std::string describe_status(int st) {
  if (WIFEXITED(st)) return "exited with code " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("killed by signal ") + ::strsignal(WTERMSIG(st));
  return "stopped";
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // the same number on every architecture (Linux 5.3)
#endif

// After SIGKILL a process only has to be torn down by the kernel: reaping it is quick, but
// still bounded, so that a process stuck in uninterruptible sleep (D state) cannot hang us.
constexpr std::chrono::seconds reap_timeout{5};
// Used only without pidfd_open (kernels before 5.3): how often waitpid(WNOHANG) is retried.
constexpr std::chrono::milliseconds waitpid_poll_interval{5};

// Reaps `pid` once it exits, waiting at most until `d`. Returns its wait status, or nullopt
// when it has not exited by then or is not our child (a fake spawn in tests). The wait is a
// poll(2) on a pidfd, which becomes readable the moment the process exits; only where
// pidfd_open does not exist (ENOSYS) does it fall back to retrying waitpid. When `wake_fd`
// becomes readable, `refresh()` is asked once for a (possibly earlier) deadline: cancel()
// uses that to bring the SIGKILL forward.
std::optional<int> wait_child(pid_t pid, graceful::deadline d, int wake_fd = -1,
                              const std::function<graceful::deadline()>& refresh = {}) {
  unique_fd pfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  // ESRCH: no such process, nothing to wait for (waitpid below says ECHILD). Any other error
  // (ENOSYS before Linux 5.3, or EMFILE) leaves polling waitpid as the only way to reap.
  const bool no_pidfd = !pfd;
  if (!refresh) wake_fd = -1;
  while (true) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) return std::nullopt;  // not our child (a fake spawn) or gone
    if (d.expired()) return std::nullopt;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(d.remaining());
    if (no_pidfd) left = std::min<std::chrono::milliseconds>(left, waitpid_poll_interval);
    int timeout = d.is_never() && !no_pidfd ? -1 : static_cast<int>(std::min<long long>(left.count(), 60'000));
    pollfd p[2] = {{no_pidfd ? wake_fd : pfd.get(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    nfds_t n = no_pidfd ? (wake_fd >= 0 ? 1 : 0) : (wake_fd >= 0 ? 2 : 1);
    int k = ::poll(p, n, timeout);
    if (k < 0 && errno != EINTR) return std::nullopt;
    const pollfd* wake = no_pidfd ? &p[0] : &p[1];
    if (k > 0 && wake_fd >= 0 && (wake->revents & POLLIN)) {
      d = earliest(d, refresh());
      wake_fd = -1;  // an eventfd that stays readable: ask once
    }
  }
}

// sd_listen_fds(3) silently ignores LISTEN_FDS addressed to another pid. Here nobody passes
// them on legitimately: systemd and graceful-run set LISTEN_PID to the very process they
// exec, and every reader (this layer included) unsets them. So a LISTEN_FDS with a LISTEN_PID
// that is not ours means a wrapper forked in between, or forged variables: the fds they name
// may be the sockets meant for us or anything else, and binding fresh ones instead would
// serve a port nobody activated. A configuration error, named with its fds.
std::error_code check_listen_pid(spdlog::logger& log) {
  const char* fds = std::getenv("LISTEN_FDS");
  if (!fds) return {};
  const char* pid = std::getenv("LISTEN_PID");
  if (pid && std::string_view(pid) == std::to_string(::getpid())) return {};
  log.error("upgrade: LISTEN_FDS={} (fds 3 and up) is addressed to LISTEN_PID={}, but this is pid {}: socket "
            "activation variables meant for another process (a wrapper that forks?); refusing them",
            fds, pid ? pid : "(unset)", ::getpid());
  for (auto k : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) ::unsetenv(k);
  return errc::invalid_inherited_fd;
}

std::string monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::to_string(static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000);
}

} // namespace

struct upgrader::impl {
  mutable std::mutex mu;
  // Guarded by mu. `st` is the one record of what the upgrader does: `upgrading` from the
  // moment an upgrade (upgrade(), start_upgrade() or a takeover conversation) is admitted
  // until its outcome is known, so admitting the next one is a single check of `st`.
  state st = state::starting;
  listeners socks;
  std::function<void(pid_t)> handed_over_cb;
  std::function<void(pid_t)> parent_gone_cb;
  pid_t successor = 0;
  // The last start_upgrade() thread. Each such thread first joins the one before it (which
  // has left `upgrading`, so at most its `done` callback is still running): nobody joins
  // while holding mu, and joining this one joins them all.
  std::thread worker;
  // A new process that got SIGTERM is SIGKILLed by this time at the latest (cancel(d)).
  graceful::deadline kill_by = graceful::deadline::never();

  // Set once in create(), read-only afterwards.
  unique_fd cancel_fd;  // eventfd, readable (forever) once cancel() ran
  std::optional<detail::inherited> from_parent;
  std::optional<detail::takeover_client> from_takeover;
  std::unique_ptr<detail::takeover_server> takeover;
  std::shared_ptr<spdlog::logger> logger;
  spdlog::logger& log() const { return logger ? *logger : *spdlog::default_logger_raw(); }

  // No upgrade from now on; one in flight stops its new process (SIGKILL by `d` at the
  // latest). Called with mu held.
  void mark_cancelled(graceful::deadline d) {
    if (st != state::handed_over) st = state::stopping;
    kill_by = earliest(kill_by, d);
    std::uint64_t one = 1;
    (void)!::write(cancel_fd.get(), &one, sizeof one);
  }

  // Why an upgrade cannot start in state `s` (empty when it can). Called with mu held.
  static std::error_code refusal(state s) {
    switch (s) {
      case state::starting: return errc::not_ready;
      case state::upgrading: return errc::upgrade_in_progress;
      case state::handed_over: return errc::handed_over;
      case state::stopping: return errc::upgrade_cancelled;
      case state::ready: break;
    }
    return {};
  }
};

upgrader::upgrader(options o) : opts_(std::move(o)), impl_(std::make_unique<impl>()) {}

std::optional<options_error> validate(const options& o) {
  auto bad = [](std::string field, std::string rule) {
    return options_error{field, "upgrade::options::" + field + " " + rule};
  };
  if (o.upgrade_timeout <= std::chrono::milliseconds::zero()) return bad("upgrade_timeout", "must be positive");
  if (o.child_stop_timeout < std::chrono::milliseconds::zero()) return bad("child_stop_timeout", "must not be negative");
  return std::nullopt;
}

result<std::unique_ptr<upgrader>> upgrader::create(options o) {
  auto& log0 = o.logger ? *o.logger : *spdlog::default_logger_raw();
  if (auto bad = validate(o)) {
    log0.error("upgrade: {}", bad->message);
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (o.argv.empty()) o.argv = own_cmdline();
  if (o.argv.empty()) {
    log0.error("upgrade: options::argv is empty and /proc/self/cmdline could not be read");
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (o.executable.empty()) {
    auto exe = resolve_executable(o.argv[0]);
    if (!exe) {
      std::error_code ec;
      exe = fs::read_symlink("/proc/self/exe", ec);
      log0.warn("upgrade: cannot resolve '{}' to a path; upgrades will re-run {} instead", o.argv[0], exe->string());
    }
    o.executable = *exe;
  } else {
    o.executable = fs::absolute(o.executable).lexically_normal();
  }

  std::unique_ptr<upgrader> u(new upgrader(std::move(o)));
  auto& m = *u->impl_;
  m.logger = u->opts_.logger;
  m.socks.set_logger(m.logger);
  m.cancel_fd.reset(::eventfd(0, EFD_CLOEXEC));
  if (!m.cancel_fd) return last_errno();

  // Where the sockets come from, most specific first: a graceful parent that started us
  // (it is waiting for our ready line), a takeover the operator asked for, systemd.
  auto inh = detail::read_handover_env(log0);
  if (!inh) return inh.error();
  if (inh.value()) {
    auto adopted = listeners::adopt(inh.value()->fds, origin::parent, u->opts_.logger);
    if (!adopted) return adopted.error();
    m.socks = std::move(adopted.value());
    m.socks.set_logger(m.logger);
    u->inherited_from_ = origin::parent;
    u->predecessor_ = inh.value()->parent;
    m.from_parent = std::move(*inh.value());
    m.log().info("upgrade: started by pid {} for a hand-over of {} socket(s)", u->predecessor_,
                 m.from_parent->fds.size());
  } else if (!u->opts_.takeover_from.empty()) {
    auto tk = detail::take_over(u->opts_.takeover_from, graceful::deadline::after(std::chrono::seconds(10)), log0);
    if (!tk) {
      m.log().error("upgrade: takeover from {} failed: {}", u->opts_.takeover_from.string(), tk.error().message());
      return tk.error();
    }
    auto adopted = listeners::adopt(tk.value().fds, origin::takeover, u->opts_.logger);
    if (!adopted) {
      for (auto& nf : tk.value().fds) ::close(nf.fd);  // received by us: ours to close
      return adopted.error();
    }
    m.socks = std::move(adopted.value());
    m.socks.set_logger(m.logger);
    u->inherited_from_ = origin::takeover;
    u->predecessor_ = tk.value().old_pid;
    m.log().info("upgrade: took {} socket(s) over from pid {} via {}", tk.value().fds.size(), u->predecessor_,
                 u->opts_.takeover_from.string());
    m.from_takeover = std::move(tk.value());
  } else if (u->opts_.systemd_activation) {
    // Read first: systemd_listen_fds unsets them, and the message should say what was passed.
    auto env = [](const char* k) { return std::string(std::getenv(k) ? std::getenv(k) : ""); };
    const std::string fds_var = env("LISTEN_FDS"), names_var = env("LISTEN_FDNAMES");
    if (auto ec = check_listen_pid(m.log())) return ec;
    auto sd = systemd_listen_fds();
    if (!sd) {
      m.log().error("upgrade: bad systemd socket activation variables (LISTEN_FDS={}, LISTEN_FDNAMES='{}'): {}; "
                    "refusing fds 3 and up", fds_var, names_var, sd.error().message());
      return std::error_code(errc::invalid_inherited_fd);
    }
    if (!sd.value().empty()) {
      auto adopted = listeners::adopt(sd.value(), origin::systemd, u->opts_.logger);
      if (!adopted) return adopted.error();
      m.socks = std::move(adopted.value());
      m.socks.set_logger(m.logger);
      u->inherited_from_ = origin::systemd;
      m.log().info("upgrade: socket-activated with {} socket(s)", sd.value().size());
    }
  }
  return u;
}

upgrader::~upgrader() {
  cancel();
  impl_->takeover.reset();
  bool handed;
  {
    std::lock_guard lk(impl_->mu);
    handed = impl_->successor != 0;
  }
  if (!opts_.pid_file.empty() && !handed) (void)remove_pid_file_if_owned(opts_.pid_file);
  impl_->socks.close_all();
}

result<unique_fd> upgrader::listen(std::string_view name, std::string_view address, const listen_options& lo) {
  if (!graceful::valid_listener_name(name)) {
    impl_->log().error("upgrade: invalid listener name '{}' (1-255 characters of A-Z a-z 0-9 _ . @ -)", name);
    return errc::invalid_name;
  }
  std::lock_guard lk(impl_->mu);
  return impl_->socks.listen(name, address, lo);
}

result<std::vector<owned_listener>> upgrader::listen_inherited() {
  std::lock_guard lk(impl_->mu);
  return impl_->socks.listen_inherited();
}

result<void> upgrader::ready() {
  auto& m = *impl_;
  {
    std::lock_guard lk(m.mu);
    if (m.st != state::starting) return ok();
    m.st = state::ready;
    m.socks.close_unclaimed();
  }
  // The pid file first: by the time the parent hears "ready" and starts draining, the file
  // already names the process that serves.
  if (!opts_.pid_file.empty()) {
    if (auto r = write_pid_file(opts_.pid_file); !r)
      m.log().error("upgrade: cannot write pid file {}: {} (still serving)", opts_.pid_file.string(),
                    r.error().message());
  }
  if (!opts_.takeover_socket.empty()) {
    detail::takeover_hooks h;
    h.timeout = opts_.upgrade_timeout;
    h.cancel_fd = m.cancel_fd.get();
    h.logger = m.logger;
    h.begin = [this]() -> result<std::vector<named_fd>> {
      auto socks = begin_upgrade();
      if (socks && opts_.systemd_notify) notify_systemd("RELOADING=1\nMONOTONIC_USEC=" + monotonic_usec());
      return socks;
    };
    h.end = [this](result<pid_t> r) {
      if (r) {
        hand_over_done(r.value(), "takeover");
      } else {
        impl_->log().error("upgrade: takeover failed: {}; still serving", r.error().message());
        upgrade_failed();
      }
    };
    auto srv = detail::takeover_server::start(opts_.takeover_socket, std::move(h));
    if (!srv)
      m.log().error("upgrade: cannot offer takeover on {}: {} (still serving)", opts_.takeover_socket.string(),
                    srv.error().message());
    else
      m.takeover = std::move(srv.value());
  }
  bool parent_gone = false;
  if (m.from_parent) {
    auto r = detail::send_all(m.from_parent->ready_fd.get(), detail::ready_line(::getpid()));
    // EPIPE: the parent's end of the ready socket closed, so the parent exited (it keeps
    // that end open for as long as it waits for us).
    parent_gone = !r && (r.error() == std::errc::broken_pipe || r.error() == std::errc::connection_reset);
    if (parent_gone)
      m.log().error("upgrade: parent pid {} exited before it heard that we are ready; abandoning the upgrade",
                    predecessor_);
    else if (!r)
      m.log().warn("upgrade: could not tell parent pid {} that we are ready: {}", predecessor_, r.error().message());
    else
      m.log().info("upgrade: ready; told parent pid {} to drain", predecessor_);
    m.from_parent->ready_fd.reset();
  }
  if (parent_gone) {
    std::function<void(pid_t)> cb;
    {
      std::lock_guard lk(m.mu);
      cb = m.parent_gone_cb;
    }
    if (cb) cb(predecessor_);
    return errc::parent_gone;
  }
  if (m.from_takeover) {
    if (auto r = detail::send_takeover_ready(m.from_takeover->conn.get()); !r)
      m.log().warn("upgrade: could not tell pid {} that we are ready: {}", predecessor_, r.error().message());
    else
      m.log().info("upgrade: ready; told pid {} to drain", predecessor_);
    m.from_takeover->conn.reset();
  }
  // The predecessor also sends MAINPID for us from the main pid (enough for NotifyAccess=main);
  // sending it ourselves too covers a predecessor killed mid-hand-over (NotifyAccess=all).
  if (opts_.systemd_notify) notify_systemd("MAINPID=" + std::to_string(::getpid()) + "\nREADY=1");
  return ok();
}

void upgrader::hand_over_done(pid_t pid, const char* how) {
  std::function<void(pid_t)> cb;
  {
    std::lock_guard lk(impl_->mu);
    impl_->st = state::handed_over;
    impl_->successor = pid;
    cb = impl_->handed_over_cb;
  }
  // From the main pid, so NotifyAccess=main is enough for systemd to follow the hand-over.
  if (opts_.systemd_notify) notify_systemd("MAINPID=" + std::to_string(pid) + "\nREADY=1");
  impl_->log().info("upgrade: pid {} is ready ({}); this process stops accepting and drains", pid, how);
  if (cb) cb(pid);
}

void upgrader::upgrade_failed() {
  bool stopping;
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->st == state::upgrading) impl_->st = state::ready;
    stopping = impl_->st == state::stopping;
  }
  // Ends systemd's "reloading" state: this process still is the service.
  if (opts_.systemd_notify && !stopping) notify_systemd("READY=1");
  // The new process writes the pid file just before its ready line; if it died in between,
  // the file names a dead pid while this process serves on: take it back.
  if (!stopping && !opts_.pid_file.empty()) {
    if (auto r = write_pid_file(opts_.pid_file); !r)
      impl_->log().error("upgrade: cannot write pid file {}: {} (still serving)", opts_.pid_file.string(),
                         r.error().message());
  }
}

result<std::vector<named_fd>> upgrader::begin_upgrade() {
  std::lock_guard lk(impl_->mu);
  if (auto refused = impl::refusal(impl_->st)) return refused;
  impl_->st = state::upgrading;
  return impl_->socks.active();
}

result<pid_t> upgrader::upgrade() {
  auto socks = begin_upgrade();
  if (!socks) return socks.error();
  return run_upgrade(std::move(socks.value()));
}

std::string upgrader::stop_child(pid_t child) {
  auto& m = *impl_;
  auto kill_by = [&m] {
    std::lock_guard lk(m.mu);
    return m.kill_by;
  };
  // SIGTERM first: the new process accepted connections before it said ready (it serves as
  // soon as it has its sockets), and draining them is what its own SIGTERM handling does.
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(child, SIGTERM);
  auto d = earliest(graceful::deadline::after(opts_.child_stop_timeout), kill_by());
  if (auto st = wait_child(child, d, m.cancel_fd.get(), kill_by)) return "SIGTERM: " + describe_status(*st);
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  ::kill(child, SIGKILL);
  auto st = wait_child(child, graceful::deadline::after(reap_timeout));
  return "SIGTERM, then SIGKILL after " + std::to_string(waited.count()) +
         " ms: " + (st ? describe_status(*st) : std::string("not reaped"));
}

result<pid_t> upgrader::run_upgrade(std::vector<named_fd> socks) {
  auto& m = *impl_;
  if (opts_.systemd_notify) notify_systemd("RELOADING=1\nMONOTONIC_USEC=" + monotonic_usec());

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    auto ec = last_errno();
    m.log().error("upgrade: socketpair: {}; still serving", ec.message());
    upgrade_failed();
    return ec;
  }
  unique_fd ours(sv[0]), theirs(sv[1]);
  spawn_request req;
  req.executable = opts_.executable;
  req.argv = opts_.argv;
  std::vector<std::string> names;
  std::string listing;
  for (auto& s : socks) {
    names.push_back(s.name);
    req.fds.push_back(s.fd);
    listing += (listing.empty() ? "" : ", ") + s.name;
  }
  req.fds.push_back(theirs.get());
  req.env = detail::child_env(names);
  m.log().info("upgrade: starting {} with {} listening socket(s) [{}]", opts_.executable.string(), socks.size(), listing);
  auto spawned = opts_.spawn ? opts_.spawn(req) : posix_spawn_process(req);
  theirs.reset();
  if (!spawned) {
    m.log().error("upgrade: cannot start {}: {}; still serving", opts_.executable.string(), spawned.error().message());
    upgrade_failed();
    return spawned.error();
  }
  pid_t child = spawned.value();
  auto line = detail::read_line(ours.get(), graceful::deadline::after(opts_.upgrade_timeout), m.cancel_fd.get());
  result<pid_t> outcome = line ? detail::parse_ready_line(line.value()) : result<pid_t>(line.error());
  if (!outcome && outcome.error() == std::errc::timed_out) outcome = errc::child_not_ready;
  if (outcome) {
    if (outcome.value() != child)
      m.log().warn("upgrade: started pid {} but pid {} said ready (a wrapper?); following pid {}", child,
                   outcome.value(), outcome.value());
    hand_over_done(outcome.value(), "upgrade");
    return outcome;
  }

  // Failure: the old process keeps serving; the new one must not linger half-started.
  std::string how = stop_child(child);
  if (outcome.error() == errc::child_not_ready)
    m.log().error("upgrade: pid {} was not ready within {} ms; stopped it ({}); still serving", child,
                  opts_.upgrade_timeout.count(), how);
  else if (outcome.error() == errc::upgrade_cancelled)
    m.log().warn("upgrade: stopping, so stopped the new pid {} ({})", child, how);
  else
    m.log().error("upgrade: pid {} failed before it was ready: {} ({}); still serving", child,
                  outcome.error().message(), how);
  upgrade_failed();
  return outcome.error();
}

result<void> upgrader::start_upgrade(std::function<void(result<pid_t>)> done) {
  auto& m = *impl_;
  std::lock_guard lk(m.mu);
  // Admitted and started under one lock, so that cancel() either refuses it or finds its thread.
  if (auto refused = impl::refusal(m.st)) {
    m.log().warn("upgrade: refused: {}", refused.message());
    return refused;
  }
  m.st = state::upgrading;
  auto socks = m.socks.active();
  try {
    m.worker = std::thread([this, previous = std::move(m.worker), socks = std::move(socks),
                            done = std::move(done)]() mutable {
      if (previous.joinable()) previous.join();
      auto r = run_upgrade(std::move(socks));
      if (done) done(r);
    });
  } catch (const std::system_error& e) {
    m.st = state::ready;
    m.log().error("upgrade: cannot start the upgrade thread: {}", e.what());
    return e.code();
  }
  return ok();
}

void upgrader::cancel() { cancel(graceful::deadline::never()); }

void upgrader::cancel(graceful::deadline kill_by) {
  auto& m = *impl_;
  std::thread worker;
  {
    std::lock_guard lk(m.mu);
    m.mark_cancelled(kill_by);
    // A `done` callback that cancels runs on the worker itself, which cannot join itself;
    // the destructor joins it later.
    if (m.worker.joinable() && m.worker.get_id() != std::this_thread::get_id()) worker = std::move(m.worker);
  }
  if (worker.joinable()) worker.join();
}

void upgrader::stop_upgrades(graceful::deadline kill_by) {
  std::lock_guard lk(impl_->mu);
  impl_->mark_cancelled(kill_by);
}

void upgrader::on_handed_over(std::function<void(pid_t)> f) {
  std::lock_guard lk(impl_->mu);
  impl_->handed_over_cb = std::move(f);
}

void upgrader::on_parent_gone(std::function<void(pid_t)> f) {
  std::lock_guard lk(impl_->mu);
  impl_->parent_gone_cb = std::move(f);
}

void upgrader::close_listeners() {
  std::lock_guard lk(impl_->mu);
  impl_->socks.close_all();
}

state upgrader::current_state() const {
  std::lock_guard lk(impl_->mu);
  return impl_->st;
}

std::vector<named_fd> upgrader::sockets() const {
  std::lock_guard lk(impl_->mu);
  return impl_->socks.active();
}

} // namespace graceful::upgrade
