#pragma once
// The input buffer of a connection.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

#include <boost/asio/buffer.hpp>

namespace graceful::http::detail {

/// A growable byte buffer with a read and a write index; memory is kept between requests
/// unless release() gives it back.
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
  /// Gives the memory back when nothing is unread (an idle connection holds no buffer);
  /// the next prepare() allocates again.
  void release() noexcept {
    if (b_ != e_) return;
    auto& c = cache();
    if (cap_ == cached_size && c.size() < c.capacity()) c.push_back(std::move(p_));  // never allocates
    p_.reset();
    cap_ = b_ = e_ = 0;
  }
  /// Room for at least `min` more bytes, after the unread ones (moved to the front or
  /// grown as needed; the unread bytes must stay contiguous for the parser).
  boost::asio::mutable_buffer prepare(std::size_t min) {
    if (cap_ - e_ < min) {
      if (b_ > 0) {
        std::memmove(p_.get(), p_.get() + b_, e_ - b_);
        e_ -= b_;
        b_ = 0;
      }
      if (cap_ == 0 && min <= cached_size && !cache().empty()) {
        p_ = std::move(cache().back());
        cache().pop_back();
        cap_ = cached_size;
      } else if (cap_ - e_ < min) {
        std::size_t ncap = std::max(cap_ * 2, e_ + min);
        if (cap_ == 0 && ncap < cached_size) ncap = cached_size;
        if (cache().capacity() == 0) cache().reserve(cache_max);
        auto np = std::make_unique_for_overwrite<char[]>(ncap);
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
  // Blocks of the usual first size are kept per thread (each loop is one thread) for the next
  // buffer: an idle connection gives its buffer back at every wait, and a malloc + free of
  // 4 KiB for every keep-alive request is measurable. At most cache_max blocks (64 KiB): a
  // block is taken back within a request, so few are ever waiting; more would only be
  // memory kept after a burst of idle connections (issue 13 item 3).
  static constexpr std::size_t cached_size = 4096;
  static constexpr std::size_t cache_max = 16;
  static std::vector<std::unique_ptr<char[]>>& cache() noexcept {
    thread_local std::vector<std::unique_ptr<char[]>> c;
    return c;
  }

  std::unique_ptr<char[]> p_;
  std::size_t cap_ = 0, b_ = 0, e_ = 0;
};

} // namespace graceful::http::detail
