#include "url.hpp"

#include <gtest/gtest.h>

namespace {

using graceful::bench::parse_url;

TEST(parse_url, splits_host_port_and_path) {
  std::string why;
  auto t = parse_url("http://127.0.0.1:8080/a/b?x=1", why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, "8080");
  EXPECT_EQ(t->path, "/a/b?x=1");
  EXPECT_EQ(t->host_header, "127.0.0.1:8080");
}

TEST(parse_url, defaults_to_port_80_and_root_path) {
  std::string why;
  auto t = parse_url("http://localhost", why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t->port, "80");
  EXPECT_EQ(t->path, "/");
  EXPECT_EQ(t->host_header, "localhost");
  auto q = parse_url("http://localhost?x", why);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->path, "/?x");
}

TEST(parse_url, accepts_bracketed_ipv6) {
  std::string why;
  auto t = parse_url("http://[::1]:9000/", why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, "9000");
  EXPECT_EQ(t->host_header, "[::1]:9000");
}

TEST(parse_url, rejects_what_it_cannot_load_with_a_reason) {
  for (const char* bad : {"https://example.com/", "ftp://x/", "127.0.0.1:80", "http://", "http://:80/",
                          "http://h:0/", "http://h:65536/", "http://h:8x/", "http://[::1/", "http://u:p@h/",
                          "http://h/a b"}) {
    std::string why;
    EXPECT_FALSE(parse_url(bad, why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

} // namespace
