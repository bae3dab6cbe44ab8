#include <graceful/core/duration.hpp>

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using graceful::format_duration;
using graceful::parse_duration;

TEST(parse_duration, reads_go_style_units) {
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("5s"), 5s);
  EXPECT_EQ(parse_duration("1m30s"), 90s);
  EXPECT_EQ(parse_duration("2h"), 2h);
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("10us"), 10us);
  EXPECT_EQ(parse_duration("0"), 0ns);
}

TEST(parse_duration, rejects_what_a_flag_must_not_accept) {
  for (auto bad : {"", "5", "s", "-1s", "5 s", "5sec", "1.2.3s", "ms", "99999999999h"})
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(format_duration, round_trips_through_parse) {
  for (std::chrono::nanoseconds d : {0ns, 250000000ns, 1500000000ns, 5000000000ns, 90000000000ns, 7200000000000ns, 10000ns, 7ns})
    EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
}
