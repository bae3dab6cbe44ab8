#pragma once
/// \file
/// The notify socket workers send sd_notify(3) messages to (READY=1).

#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <graceful/core/result.hpp>

#include "fd.hpp"

namespace graceful::run {

/// One datagram received on the notify socket.
struct notify_message {
  pid_t sender = -1;                    ///< from SCM_CREDENTIALS, filled in by the kernel
  std::vector<std::string> assignments; ///< "READY=1", "STATUS=...", one per line
};

/// An AF_UNIX datagram socket in the abstract namespace, named for NOTIFY_SOCKET as
/// "@graceful-run/<pid>/<random>". The abstract namespace leaves no file to clean up
/// and works on a read-only root file system. SO_PASSCRED makes the kernel attach the
/// sender's real pid to every datagram (unix(7)), so a message cannot claim to come
/// from a worker it does not come from.
class notify_socket {
public:
  /// Creates and binds the socket (non-blocking, close-on-exec).
  static graceful::result<notify_socket> open();

  /// The value for NOTIFY_SOCKET ("@..." names an abstract address, as in sd_notify(3)).
  const std::string& address() const noexcept { return address_; }
  /// The fd to poll for input.
  int fd() const noexcept { return fd_.get(); }
  /// Reads one pending datagram; nullopt when none is pending.
  std::optional<notify_message> receive();

private:
  unique_fd fd_;
  std::string address_;
};

} // namespace graceful::run
