#include <graceful/core/listener_name.hpp>

#include <string>

#include <gtest/gtest.h>

TEST(listener_name, accepts_the_names_in_use) {
  for (const char* n : {"http", "http-2", "admin", "web", "echo", "local", "v6", "x", "unknown",
                        "graceful-server.socket", "app@1.socket", "metrics_v1.2", "A-Z_09"})
    EXPECT_TRUE(graceful::valid_listener_name(n)) << n;
  EXPECT_TRUE(graceful::valid_listener_name(std::string(255, 'n')));
}

TEST(listener_name, refuses_what_would_break_a_fd_name_list_or_a_log_line) {
  for (std::string n : {std::string(), std::string(256, 'n'), std::string("a:b"), std::string("a b"),
                        std::string("a\nb"), std::string("a=b"), std::string("a/b"), std::string("caf\xc3\xa9"),
                        std::string("a\0b", 3), std::string("\"q\"")})
    EXPECT_FALSE(graceful::valid_listener_name(n)) << n;
}

static_assert(graceful::valid_listener_name("http"));
