#pragma once
// The input buffer of a connection.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

#include <boost/asio/buffer.hpp>

namespace graceful::http::detail {

/// A growable byte buffer with a read and a write index; memory is kept between requests.
class byte_buffer {
public:
  /// The unread bytes.
  const char* data() const noexcept { return p_.get() + b_; }
  /// How many unread bytes there are.
  std::size_t size() const noexcept { return e_ - b_; }
  /// True when nothing is unread.
  bool empty() const noexcept { return b_ == e_; }
  /// Marks `n` unread bytes as read.
  void consume(std::size_t n) noexcept {
    b_ += n;
    if (b_ == e_) b_ = e_ = 0;
  }
  /// Drops every unread byte (capacity kept).
  void clear() noexcept { b_ = e_ = 0; }
  /// Room for at least `min` more bytes, after the unread ones (moved to the front or
  /// grown as needed; the unread bytes must stay contiguous for the parser).
  boost::asio::mutable_buffer prepare(std::size_t min) {
    if (cap_ - e_ < min) {
      if (b_ > 0) {
        std::memmove(p_.get(), p_.get() + b_, e_ - b_);
        e_ -= b_;
        b_ = 0;
      }
      if (cap_ - e_ < min) {
        std::size_t ncap = std::max(cap_ * 2, e_ + min);
        auto np = std::make_unique<char[]>(ncap);
        if (e_) std::memcpy(np.get(), p_.get(), e_);
        p_ = std::move(np);
        cap_ = ncap;
      }
    }
    return {p_.get() + e_, cap_ - e_};
  }
  /// Makes `n` bytes written into prepare()'s buffer unread bytes.
  void commit(std::size_t n) noexcept { e_ += n; }

private:
  std::unique_ptr<char[]> p_;
  std::size_t cap_ = 0, b_ = 0, e_ = 0;
};

} // namespace graceful::http::detail
