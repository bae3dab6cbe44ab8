#include <graceful/upgrade/errc.hpp>

#include <set>

#include <gtest/gtest.h>

namespace up = graceful::upgrade;

TEST(upgrade_errc, every_code_has_its_own_message_in_the_upgrade_category) {
  std::set<std::string> messages;
  for (int v = static_cast<int>(up::errc::upgrade_in_progress); v <= static_cast<int>(up::errc::unsafe_path); ++v) {
    std::error_code ec = static_cast<up::errc>(v);
    EXPECT_STREQ(ec.category().name(), "graceful.upgrade");
    EXPECT_FALSE(ec.message().starts_with("unknown")) << v;
    EXPECT_TRUE(messages.insert(ec.message()).second) << "duplicate message " << ec.message();
  }
  EXPECT_EQ(std::error_code(up::errc::upgrade_in_progress).message(), "an upgrade is already in progress");
}
