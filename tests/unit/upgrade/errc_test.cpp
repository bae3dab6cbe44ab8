#include <graceful/upgrade/errc.hpp>

#include <set>

#include <gtest/gtest.h>

namespace up = graceful::upgrade;

TEST(upgrade_errc, every_code_has_its_own_message_in_the_upgrade_category) {
  std::set<std::string> messages;
  for (int v = static_cast<int>(up::errc::upgrade_in_progress); v <= static_cast<int>(up::errc::invalid_name); ++v) {
    std::error_code ec = static_cast<up::errc>(v);
    EXPECT_STREQ(ec.category().name(), "graceful.upgrade");
    EXPECT_FALSE(ec.message().starts_with("unknown")) << v;
    EXPECT_TRUE(messages.insert(ec.message()).second) << "duplicate message " << ec.message();
  }
  EXPECT_EQ(std::error_code(up::errc::upgrade_in_progress).message(), "an upgrade is already in progress");
}

TEST(upgrade_errc, configuration_errors_are_the_bad_configuration_condition_and_exit_2) {
  for (auto e : {up::errc::invalid_inherited_fd, up::errc::address_mismatch, up::errc::bad_address,
                 up::errc::duplicate_name, up::errc::invalid_name, up::errc::protocol_mismatch,
                 up::errc::peer_rejected}) {
    std::error_code ec = e;
    EXPECT_EQ(ec, up::condition::bad_configuration) << ec.message();
    EXPECT_EQ(up::exit_code_for(ec), 2) << ec.message();
  }
  for (auto e : {up::errc::upgrade_in_progress, up::errc::child_not_ready, up::errc::takeover_failed}) {
    std::error_code ec = e;
    EXPECT_NE(ec, up::condition::bad_configuration) << ec.message();
    EXPECT_EQ(up::exit_code_for(ec), 1) << ec.message();
  }
  EXPECT_EQ(up::exit_code_for(std::make_error_code(std::errc::address_in_use)), 1);
  EXPECT_STREQ(std::error_condition(up::condition::bad_configuration).category().name(), "graceful.upgrade.condition");
}
