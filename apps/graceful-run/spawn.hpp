#pragma once
/// \file
/// Starting a worker by the systemd socket-activation protocol, and owning it.

#include <string>
#include <vector>

#include <sys/types.h>

#include <graceful/core/result.hpp>

#include "listeners.hpp"

namespace graceful::run {

/// A child process this program started. Until reaped (release()), the destructor
/// SIGKILLs its process group and reaps it, so no code path can leak a worker.
class process {
public:
  process() noexcept = default;
  /// Owns the running child `pid`, which leads its own process group.
  explicit process(pid_t pid) noexcept : pid_(pid) {}
  ~process();
  process(process&& o) noexcept;
  process& operator=(process&& o) noexcept;
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  /// The child's pid (-1 once released).
  pid_t pid() const noexcept { return pid_; }
  /// Sends `sig` to the child itself (not its group): the worker decides what its own
  /// children get, as with a SIGTERM from systemd with KillMode=mixed.
  void signal(int sig) const noexcept;
  /// SIGKILLs the child's whole process group: nothing it started survives the deadline.
  void kill_group() const noexcept;
  /// Forgets the child after the caller reaped it with waitpid.
  void release() noexcept { pid_ = -1; }

private:
  pid_t pid_ = -1;
};

/// What a worker is started with.
struct spawn_request {
  std::vector<std::string> argv;             ///< argv[0] is looked up in PATH when it has no '/'
  const std::vector<listener>* listeners{};  ///< placed at fds 3.. in this order
  std::string notify_socket;                 ///< NOTIFY_SOCKET for the worker; empty: unset
};

/// Forks and execs a worker: listeners at fds 3..3+n-1, LISTEN_FDS=n,
/// LISTEN_FDNAMES=name1:name2..., LISTEN_PID=<the worker's own pid> (sd_listen_fds(3)
/// ignores the fds unless LISTEN_PID matches, so it can only be written after fork), an
/// empty signal mask, default signal dispositions, its own process group (so a terminal's
/// Ctrl-C reaches graceful-run only, which forwards it once), PR_SET_PDEATHSIG=SIGTERM, and
/// every other fd above 2 close-on-exec. fork+exec, not posix_spawn: LISTEN_PID can only be
/// written once the child's pid exists. Fails — with the worker reaped — when exec fails.
graceful::result<process> spawn(const spawn_request& req);

} // namespace graceful::run
