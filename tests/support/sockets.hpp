#pragma once
// Test support: sockets a test opens itself — a listening socket on port 0 (the kernel picks
// the port and the test keeps the socket, so no other process can take the port in between),
// a program started under emulated systemd socket activation, and the takeover client with
// its SCM_RIGHTS receive (src/upgrade/takeover.cpp documents the protocol).

#include <string>
#include <vector>

#include <graceful/core/deadline.hpp>

#include "process.hpp"

namespace graceful::test {

/// An fd closed by the destructor.
class owned_fd {
public:
  owned_fd() = default;
  explicit owned_fd(int fd) noexcept : fd_(fd) {}
  ~owned_fd() { reset(); }
  owned_fd(owned_fd&& o) noexcept : fd_(o.release()) {}
  owned_fd& operator=(owned_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  int get() const noexcept { return fd_; }
  int release() noexcept {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset() noexcept;
  explicit operator bool() const noexcept { return fd_ >= 0; }

private:
  int fd_ = -1;
};

/// A listening TCP socket bound to `ip` port 0 and the port the kernel gave it.
struct listening_socket {
  owned_fd fd;
  int port = 0;
};
/// Binds `ip` ("127.0.0.1", "0.0.0.0", "::", "::1") port 0 and listens. fd -1 when the
/// address cannot be bound (e.g. no IPv6 on this machine).
listening_socket listen_tcp(const std::string& ip = "127.0.0.1", int backlog = 128);

/// A child spec that runs `argv` as systemd socket activation would: `fd` at fd 3,
/// LISTEN_PID=<its own pid> (the shell execs, keeping $$), LISTEN_FDS=1, LISTEN_FDNAMES=`name`
/// (omitted when empty). `listen_pid` overrides LISTEN_PID to test a mismatch.
child::spec socket_activated(std::vector<std::string> argv, int fd, const std::string& name = "",
                             std::vector<std::string> env_add = {}, const std::string& listen_pid = "$$");

/// One datagram and the descriptors that came with it (SCM_RIGHTS), owned.
struct received {
  long bytes = -1;  ///< recvmsg's result: -1 on error, 0 on EOF
  std::string text;
  std::vector<owned_fd> fds;
};
/// Receives one message on `sock` until `d`, with up to 253 descriptors (SCM_MAX_FD).
received receive_with_fds(int sock, graceful::deadline d);

/// What the old process answered a takeover request.
struct takeover_reply {
  int connect_errno = 0;  ///< non-zero when the socket could not be reached
  received message;       ///< "GRACEFUL-TAKEOVER-FDS 1 ..." with fds, or "GRACEFUL-TAKEOVER-ERR 1 ..."
  bool refused() const { return connect_errno == 0 && message.text.starts_with("GRACEFUL-TAKEOVER-ERR") && message.fds.empty(); }
};
/// Connects to the takeover socket at `path`, sends "GRACEFUL-TAKEOVER 1 <our pid>" and reads
/// the answer (5 s). Does not send READY: the old process keeps serving.
takeover_reply request_takeover(const std::string& path);

} // namespace graceful::test
