#pragma once
/// \file
/// A point in time by which a blocking operation must give up. Every blocking wait in
/// graceful takes one, so that no shutdown path can hang forever.

#include <algorithm>
#include <chrono>

namespace graceful {

/// A deadline on the monotonic clock. The default-constructed deadline never expires.
class deadline {
public:
  using clock = std::chrono::steady_clock;

  /// Never expires.
  constexpr deadline() noexcept = default;
  /// Expires at `when`.
  constexpr explicit deadline(clock::time_point when) noexcept : when_(when) {}

  /// Expires `d` from now; negative durations give an already-expired deadline.
  template <class Rep, class Period>
  static deadline after(std::chrono::duration<Rep, Period> d) noexcept {
    auto now = clock::now();
    // Compare in floating point first: duration_cast of hours::max() would overflow.
    using fsec = std::chrono::duration<double>;
    if (fsec(d) >= fsec(clock::time_point::max() - now)) return deadline{};
    return deadline{now + std::chrono::duration_cast<clock::duration>(d)};
  }
  /// Never expires.
  static constexpr deadline never() noexcept { return deadline{}; }

  /// True when the deadline never expires.
  constexpr bool is_never() const noexcept { return when_ == clock::time_point::max(); }
  /// True once the deadline has passed.
  bool expired() const noexcept { return !is_never() && clock::now() >= when_; }
  /// Time left, zero once expired, clock::duration::max() for never.
  clock::duration remaining() const noexcept {
    if (is_never()) return clock::duration::max();
    return std::max(clock::duration::zero(), when_ - clock::now());
  }
  /// The expiry time point (time_point::max() for never).
  constexpr clock::time_point when() const noexcept { return when_; }
  /// The earlier of two deadlines.
  friend constexpr deadline earliest(deadline a, deadline b) noexcept {
    return a.when_ <= b.when_ ? a : b;
  }
  friend constexpr bool operator==(deadline, deadline) noexcept = default;

private:
  clock::time_point when_ = clock::time_point::max();
};

} // namespace graceful
