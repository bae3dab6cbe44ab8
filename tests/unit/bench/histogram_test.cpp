#include "histogram.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

namespace {

using graceful::bench::coarse_histogram;
using graceful::bench::fine_histogram;

TEST(log_linear_histogram, is_exact_below_twice_the_sub_bucket_count) {
  fine_histogram h;
  for (std::uint64_t v = 0; v < 128; ++v) EXPECT_EQ(fine_histogram::middle_of(fine_histogram::index_of(v)), v);
  h.record(7);
  EXPECT_EQ(h.quantile(0.5), 7u);
  EXPECT_EQ(h.max(), 7u);
}

TEST(log_linear_histogram, bucket_indices_are_monotonic_and_in_range) {
  std::size_t prev = 0;
  for (std::uint64_t v = 1; v < (std::uint64_t{1} << 36); v = v * 17 / 16 + 1) {
    const auto i = fine_histogram::index_of(v);
    EXPECT_GE(i, prev) << v;
    EXPECT_LT(i, fine_histogram::bucket_count) << v;
    prev = i;
  }
  EXPECT_EQ(fine_histogram::index_of(fine_histogram::max_value), fine_histogram::bucket_count - 1);
}

TEST(log_linear_histogram, reports_values_within_one_percent) {
  for (std::uint64_t v : {130ull, 1000ull, 12345ull, 987654ull, 5'000'000'000ull}) {
    fine_histogram h;
    h.record(v);
    h.record(v + 1'000'000'000'000ull);  // a much larger max so that the cap at max() does not help
    const double got = double(h.quantile(0.5));
    EXPECT_NEAR(got, double(v), double(v) * 0.01) << v;
  }
}

TEST(log_linear_histogram, percentiles_of_a_uniform_sample) {
  fine_histogram h;
  for (std::uint64_t v = 1; v <= 10000; ++v) h.record(v);
  EXPECT_NEAR(double(h.quantile(0.50)), 5000, 50);
  EXPECT_NEAR(double(h.quantile(0.90)), 9000, 90);
  EXPECT_NEAR(double(h.quantile(0.99)), 9900, 99);
  EXPECT_EQ(h.quantile(1.0), 10000u);
  EXPECT_EQ(h.max(), 10000u);
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_NEAR(h.mean(), 5000.5, 0.01);
}

TEST(log_linear_histogram, a_single_outlier_shows_in_max_and_p99_9_but_not_p99) {
  fine_histogram h;
  for (int i = 0; i < 999; ++i) h.record(100);
  h.record(3'000'000);  // one 3 s stall among 1000 requests
  EXPECT_EQ(h.quantile(0.99), 100u);
  EXPECT_EQ(h.max(), 3'000'000u);
  EXPECT_NEAR(double(h.quantile(0.9995)), 3'000'000, 30'000);
}

TEST(log_linear_histogram, merge_equals_recording_everything_in_one) {
  coarse_histogram a, b, all;
  std::mt19937_64 rng(42);
  for (int i = 0; i < 5000; ++i) {
    const auto v = rng() % 1'000'000;
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.quantile(q), all.quantile(q)) << q;
}

TEST(log_linear_histogram, empty_reports_zero_and_huge_values_are_clamped) {
  fine_histogram h;
  EXPECT_EQ(h.quantile(0.99), 0u);
  EXPECT_EQ(h.max(), 0u);
  h.record(~std::uint64_t{0});
  EXPECT_EQ(h.max(), fine_histogram::max_value);
  EXPECT_EQ(h.count(), 1u);
}

} // namespace
