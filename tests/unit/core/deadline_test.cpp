#include <graceful/core/deadline.hpp>

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using graceful::deadline;

TEST(deadline, default_never_expires) {
  deadline d;
  EXPECT_TRUE(d.is_never());
  EXPECT_FALSE(d.expired());
  EXPECT_EQ(d.remaining(), deadline::clock::duration::max());
}

TEST(deadline, after_negative_or_zero_is_already_expired) {
  EXPECT_TRUE(deadline::after(-1s).expired());
  EXPECT_TRUE(deadline::after(0s).expired());
  EXPECT_EQ(deadline::after(-1s).remaining(), deadline::clock::duration::zero());
}

TEST(deadline, after_huge_duration_saturates_to_never) {
  EXPECT_TRUE(deadline::after(std::chrono::hours::max()).is_never());
}

TEST(deadline, earliest_picks_the_sooner) {
  auto a = deadline::after(1s), b = deadline::after(1h);
  EXPECT_EQ(earliest(a, b), a);
  EXPECT_EQ(earliest(deadline::never(), b), b);
}
