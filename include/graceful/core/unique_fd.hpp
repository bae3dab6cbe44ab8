#pragma once
/// \file
/// An owned file descriptor: closed on destruction, move-only. The one owner type of every
/// layer (the upgrade layer's graceful::upgrade::unique_fd is this type).

#include <utility>

#include <unistd.h>

namespace graceful {

/// Owns one fd (or none, -1). Closing is the only thing it does.
class unique_fd {
public:
  /// Holds nothing.
  constexpr unique_fd() noexcept = default;
  /// Takes ownership of `fd` (-1 for none).
  constexpr explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  /// The fd, still owned.
  constexpr int get() const noexcept { return fd_; }
  /// Gives the fd away (e.g. to an Asio acceptor's assign()).
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the current fd (if any) and holds `fd`.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  /// True when it holds an fd.
  constexpr explicit operator bool() const noexcept { return fd_ >= 0; }

private:
  int fd_ = -1;
};

} // namespace graceful
