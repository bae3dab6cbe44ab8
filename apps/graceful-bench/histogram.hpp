#pragma once
/// \file
/// A fixed-size log-linear latency histogram (the HdrHistogram layout): exact below
/// 2*2^SubBits microseconds, then 2^SubBits equal buckets per power of two. Recording is
/// one bit_width and one increment, with no allocation, so a worker thread records every
/// request; threads merge their histograms once at the end.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace graceful::bench {

/// Latencies in microseconds up to 2^36 us (~19 hours); larger values land in the last bucket.
/// Relative error of a reported value is at most 1/2^(SubBits+1) (SubBits=6: 0.8 %).
template <unsigned SubBits, class Count>
class log_linear_histogram {
public:
  static constexpr unsigned max_bits = 36;
  static constexpr std::uint64_t sub = std::uint64_t{1} << SubBits;
  static constexpr std::size_t bucket_count = sub * (max_bits + 1 - SubBits);
  static constexpr std::uint64_t max_value = (std::uint64_t{1} << max_bits) - 1;

  /// Records one value (microseconds).
  void record(std::uint64_t us) noexcept {
    us = std::min(us, max_value);
    ++counts_[index_of(us)];
    ++total_;
    max_ = std::max(max_, us);
    sum_ += us;
  }

  /// Adds another histogram of any precision-compatible layout into this one.
  void merge(const log_linear_histogram& o) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
    sum_ += o.sum_;
  }

  /// Number of recorded values.
  std::uint64_t count() const noexcept { return total_; }
  /// Largest recorded value (exact), 0 when empty.
  std::uint64_t max() const noexcept { return max_; }
  /// Arithmetic mean, 0 when empty.
  double mean() const noexcept { return total_ ? double(sum_) / double(total_) : 0.0; }

  /// The value at quantile q in [0,1] (0.99 = p99): the middle of the bucket holding the
  /// ceil(q*count)-th smallest value, never above the exact maximum. 0 when empty.
  std::uint64_t quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(std::ceil(q * double(total_)));
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(middle_of(i), max_);
    }
    return max_;
  }

  static constexpr std::size_t index_of(std::uint64_t v) noexcept {
    if (v < 2 * sub) return static_cast<std::size_t>(v);
    const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - (SubBits + 1);
    return static_cast<std::size_t>(2 * sub + (shift - 1) * sub + ((v >> shift) - sub));
  }
  static constexpr std::uint64_t middle_of(std::size_t i) noexcept {
    if (i < 2 * sub) return i;
    const std::uint64_t j = i - 2 * sub;
    const unsigned shift = static_cast<unsigned>(j / sub) + 1;
    const std::uint64_t lower = (j % sub + sub) << shift;
    return lower + ((std::uint64_t{1} << shift) >> 1);
  }

private:
  std::array<Count, bucket_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t sum_ = 0;
};

/// Whole-run histogram: 64 buckets per octave, 64-bit counts (~16 KiB).
using fine_histogram = log_linear_histogram<6, std::uint64_t>;
/// Per-second histogram for the timeline: 32 buckets per octave, 32-bit counts (~4 KiB).
using coarse_histogram = log_linear_histogram<5, std::uint32_t>;

} // namespace graceful::bench
