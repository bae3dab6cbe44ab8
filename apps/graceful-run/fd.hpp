#pragma once
/// \file
/// unique_fd: the one owner of a file descriptor.

#include <utility>

#include <unistd.h>

namespace graceful::run {

/// Owns a file descriptor and closes it on destruction. Move-only.
class unique_fd {
public:
  /// Owns nothing.
  unique_fd() noexcept = default;
  /// Takes ownership of `fd` (-1: nothing).
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  /// The descriptor, still owned (-1 when empty).
  int get() const noexcept { return fd_; }
  /// True when a descriptor is owned.
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Closes the owned descriptor and takes `fd` instead.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

} // namespace graceful::run
