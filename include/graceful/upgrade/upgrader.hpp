#pragma once
/// \file
/// The upgrader: hands this process's listening sockets to a new process with zero
/// downtime, like nginx's binary upgrade and cloudflare/tableflip.
///
/// Invariant: at any time there are one or two processes, and at most one of them is not
/// ready. The old one keeps accepting until the new one says it serves; only then does it
/// stop accepting and drain. The listening sockets are the same kernel objects in both, so
/// connections queued during the hand-over are accepted by one or the other, never refused.
///
/// A program's main:
///   lifecycle lc;                                    // first: blocks signals for every thread
///   auto up = upgrader::create({.pid_file = ...}).value();
///   auto fd = up->listen("http", "0.0.0.0:8080").value();   // inherited or new
///   server.serve(fd.release());
///   auto binding = up->attach(lc);                   // SIGHUP upgrades; hand-over stops lc
///   up->ready();                                     // tells the parent (or systemd) we serve
///   return lc.run();

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <graceful/core/deadline.hpp>
#include <graceful/core/result.hpp>
#include <graceful/lifecycle/registration.hpp>
#include <graceful/upgrade/errc.hpp>
#include <graceful/upgrade/listeners.hpp>
#include <graceful/upgrade/options.hpp>
#include <graceful/upgrade/unique_fd.hpp>

namespace graceful::lifecycle { class lifecycle; }

namespace graceful::upgrade {

/// What state an upgrader is in. Never goes back from handed_over or stopping.
enum class state : int {
  starting = 0,   ///< created; listeners being set up; not serving yet
  ready = 1,      ///< serving; an upgrade may start
  upgrading = 2,  ///< a new process is starting (upgrade() or a takeover conversation)
  handed_over = 3,///< a new process is ready and owns the sockets: this one should drain and exit
  stopping = 4,   ///< cancel() was called (a stop began): no upgrade any more
};

/// "starting", "ready", "upgrading", "handed_over", "stopping".
std::string_view to_string(state s) noexcept;

/// How upgrader::attach wires an upgrader into a lifecycle.
struct attach_options {
  /// Called once, on the thread that completed the hand-over, the moment the new process has
  /// said it is ready and before the lifecycle's stop begins: stop accepting here (close the
  /// program's own copies of the listening sockets, e.g. its Asio acceptors) and return once
  /// that is done, so that every connection from then on goes to the new process. Connections
  /// already accepted stay and drain. Empty (default): the program stops accepting in its
  /// shutdown hook, which lets this process accept during the drain phase.
  std::function<void()> stop_accepting{};
  /// A new process stopped while this one stops (cancel) is SIGKILLed this long before the
  /// lifecycle's deadline at the latest, so that it is reaped before this process exits.
  /// Default 250 ms: a SIGKILLed process is reaped in far less.
  std::chrono::milliseconds reap_margin{250};
};

class upgrader {
public:
  /// Adopts inherited sockets: graceful's hand-over from a parent (GRACEFUL_* variables),
  /// else options::takeover_from, else systemd socket activation. Resolves the executable
  /// path. Unsets the variables it read, so processes this one starts do not misread them
  /// (call it early in main, before threads that read the environment).
  /// Errors: errc::invalid_inherited_fd (forged/stale variables), errc::protocol_mismatch,
  /// errc::peer_rejected / errc::takeover_failed (takeover), std::errc::invalid_argument
  /// (bad options), or the OS error.
  static result<std::unique_ptr<upgrader>> create(options o = {});

  /// Cancels an upgrade in flight (the new process is stopped and reaped), stops the
  /// takeover socket, removes the pid file if this process still owns it and did not hand
  /// over, and closes the listening sockets it holds.
  ~upgrader();
  upgrader(const upgrader&) = delete;
  upgrader& operator=(const upgrader&) = delete;

  /// See listeners::listen. Only before ready().
  result<unique_fd> listen(std::string_view name, std::string_view address, const listen_options& lo = {});
  /// See listeners::listen_inherited. Only before ready().
  result<std::vector<owned_listener>> listen_inherited();

  /// Call once this process serves: closes inherited sockets nobody asked for, writes the
  /// pid file (an error there is logged, not returned: the process keeps serving), starts
  /// the takeover socket, and tells whoever is waiting (the parent, the takeover peer, or
  /// systemd with READY=1). Calling it again does nothing.
  /// errc::parent_gone: this process was started for a hand-over, and the parent exited
  /// before it heard "ready" (its stop was forced, or it was killed): nobody hands the
  /// service over, so this process should stop too. The on_parent_gone callback runs first
  /// (attach() makes it a stop with exit code 1).
  result<void> ready();

  /// Starts the new binary with the same arguments, passes it the listening sockets and
  /// waits for it to say ready (at most options::upgrade_timeout). Returns its pid; from
  /// then on this process should stop accepting and drain. On failure the new process is
  /// killed and reaped, the reason is logged, and this process keeps serving: a later call
  /// may try again. Refusals: errc::not_ready, errc::upgrade_in_progress,
  /// errc::handed_over, errc::upgrade_cancelled.
  result<pid_t> upgrade();

  /// upgrade() on a thread of its own, for a signal handler that must return at once.
  /// Refuses (and logs) like upgrade() when one is running; `done` gets the outcome.
  result<void> start_upgrade(std::function<void(result<pid_t>)> done = {});

  /// A stop began: stops a new process that is starting (SIGTERM, then SIGKILL after
  /// options::child_stop_timeout) and refuses later upgrades. Waits for the upgrade thread.
  void cancel();
  /// cancel(), with the SIGKILL of a new process that has not exited on SIGTERM brought
  /// forward to `kill_by` when that is earlier than options::child_stop_timeout.
  void cancel(graceful::deadline kill_by);

  /// Called once, with the new process's pid, when the sockets have been handed over
  /// (by upgrade() or through the takeover socket). Called on the thread that completed
  /// the hand-over. Replaces any earlier callback.
  void on_handed_over(std::function<void(pid_t)> f);

  /// Called once, from ready(), with the parent's pid, when the parent that started this
  /// process for a hand-over is gone before it heard "ready" (see ready()). Replaces any
  /// earlier callback.
  void on_parent_gone(std::function<void(pid_t)> f);

  /// Closes this process's copies of the listening sockets (the new process, if any, keeps
  /// its own). For a stop without hand-over, so the kernel refuses instead of queueing.
  void close_listeners();

  /// Wires the upgrader into a lifecycle: SIGHUP runs start_upgrade() (refused with a log
  /// line while one runs); a completed hand-over calls attach_options::stop_accepting, then
  /// request_stop("upgraded") with no drain delay; when draining begins later upgrades are
  /// refused, one in flight stops its new process, and systemd hears STOPPING=1 (unless this
  /// is a hand-over) and the upgrader's listener copies are closed (the program's own copies
  /// are then the last ones); at cleanup a new process
  /// that was stopped is reaped (SIGKILL before the deadline if SIGTERM was not enough). A
  /// process whose hand-over parent is gone (errc::parent_gone from ready()) stops, with exit
  /// code 1. Destroying the registration unwires it.
  lifecycle::registration attach(lifecycle::lifecycle& lc, attach_options o = {});

  /// The current state.
  state current_state() const;
  /// Where the inherited sockets came from (created when none were inherited).
  origin inherited_from() const noexcept { return inherited_from_; }
  /// The process that handed the sockets over (parent or takeover peer), 0 if none.
  pid_t predecessor() const noexcept { return predecessor_; }
  /// The program a new process runs (absolute).
  const std::filesystem::path& executable() const noexcept { return opts_.executable; }
  /// The sockets that would be handed over now, by name.
  std::vector<named_fd> sockets() const;
  /// The options in force (executable and argv resolved).
  const options& config() const noexcept { return opts_; }

private:
  struct impl;
  explicit upgrader(options o);
  result<std::vector<named_fd>> begin_upgrade();
  result<pid_t> run_upgrade(std::vector<named_fd> socks);
  std::string stop_child(pid_t child);
  void stop_upgrades(graceful::deadline kill_by);
  void hand_over_done(pid_t pid, const char* how);
  void upgrade_failed();
  options opts_;
  origin inherited_from_ = origin::created;
  pid_t predecessor_ = 0;
  std::unique_ptr<impl> impl_;
};

} // namespace graceful::upgrade
