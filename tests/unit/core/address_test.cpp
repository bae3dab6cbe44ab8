#include <graceful/core/address.hpp>

#include <set>
#include <string>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <graceful/core/errc.hpp>
#include <graceful/core/listen_socket.hpp>

namespace {

using graceful::address;
using graceful::errc;

address parsed(std::string_view text) {
  auto a = address::parse(text);
  EXPECT_TRUE(a) << text << ": " << (a ? "" : a.error().message());
  return a ? a.value() : address{};
}

TEST(address, reads_numeric_ipv4) {
  auto a = parsed("1.2.3.4:80");
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.port(), 80);
  EXPECT_EQ(a.size(), sizeof(sockaddr_in));
  EXPECT_FALSE(a.is_wildcard());
  EXPECT_EQ(a.to_string(), "1.2.3.4:80");
  EXPECT_EQ(parsed("127.0.0.1:0").to_string(), "127.0.0.1:0");
  EXPECT_EQ(parsed("255.255.255.255:65535").port(), 65535);
}

TEST(address, reads_bracketed_ipv6) {
  auto a = parsed("[::1]:8080");
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.size(), sizeof(sockaddr_in6));
  EXPECT_EQ(a.to_string(), "[::1]:8080");
  EXPECT_EQ(parsed("[2001:db8::42]:1").to_string(), "[2001:db8::42]:1");
  auto any = parsed("[::]:80");
  EXPECT_TRUE(any.is_wildcard());
  EXPECT_EQ(any.to_string(), "[::]:80");
}

TEST(address, reads_an_ipv6_scope_id_without_dns) {
  // "lo" exists in every network namespace, the test container's included.
  auto a = parsed("[fe80::1%lo]:80");
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_NE(reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_scope_id, 0u);
}

TEST(address, empty_host_star_and_zeros_are_the_ipv4_wildcard) {
  for (const char* text : {":80", "*:80", "0.0.0.0:80"}) {
    auto a = parsed(text);
    EXPECT_EQ(a.family(), AF_INET) << text;
    EXPECT_TRUE(a.is_wildcard()) << text;
    EXPECT_EQ(a.to_string(), "0.0.0.0:80") << text;
  }
}

TEST(address, localhost_is_127_0_0_1_without_a_lookup) {
  auto a = parsed("localhost:8080");
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
}

TEST(address, reads_unix_paths_in_both_spellings) {
  auto a = parsed("unix:/run/app.sock");
  EXPECT_EQ(a.family(), AF_UNIX);
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.to_string(), "unix:/run/app.sock");
  EXPECT_EQ(parsed("/run/app.sock").to_string(), "unix:/run/app.sock");
  EXPECT_EQ(parsed("unix:relative.sock").to_string(), "unix:relative.sock");
  // 107 bytes is the longest path sun_path holds with its NUL.
  std::string longest = "/" + std::string(106, 'p');
  EXPECT_EQ(parsed("unix:" + longest).to_string(), "unix:" + longest);
}

TEST(address, text_form_parses_back_to_the_same_address) {
  for (const char* text : {"10.0.0.1:443", "[::1]:0", "[::]:9", "unix:/tmp/x.sock", "0.0.0.0:1"}) {
    auto a = parsed(text);
    auto b = parsed(a.to_string());
    EXPECT_EQ(a.to_string(), b.to_string());
    EXPECT_TRUE(a.matched_by(b)) << text;
  }
}

struct bad_case {
  const char* text;
  errc why;
};

TEST(address, names_every_reason_it_refuses_an_address) {
  std::string too_long = "unix:/" + std::string(107, 'p');
  const bad_case cases[] = {
      {"", errc::address_empty},
      {"8080", errc::address_missing_port},
      {"127.0.0.1", errc::address_missing_port},
      {"nonsense", errc::address_missing_port},
      {"[::1]", errc::address_missing_port},
      {"127.0.0.1:", errc::address_bad_port},
      {"127.0.0.1:http", errc::address_bad_port},
      {"127.0.0.1:70000", errc::address_bad_port},
      {"127.0.0.1:-1", errc::address_bad_port},
      {"127.0.0.1:+80", errc::address_bad_port},
      {"127.0.0.1:80 ", errc::address_bad_port},
      {"[::1]:", errc::address_bad_port},
      {"[::1]:99999", errc::address_bad_port},
      {"[::1:80", errc::address_unclosed_bracket},
      {"[::1]80", errc::address_unclosed_bracket},
      {"::1:80", errc::address_ipv6_needs_brackets},
      {"::80", errc::address_ipv6_needs_brackets},
      {"no-such-host.invalid:80", errc::address_bad_host},
      {"example.com:80", errc::address_bad_host},
      {"127.1:80", errc::address_bad_host},
      {"256.0.0.1:80", errc::address_bad_host},
      {"[127.0.0.1]:80", errc::address_bad_host},
      {"[]:80", errc::address_bad_host},
      {"[localhost]:80", errc::address_bad_host},
      {"LOCALHOST:80", errc::address_bad_host},
      {"**:80", errc::address_bad_host},
      {"unix:", errc::address_unix_path_empty},
      {too_long.c_str(), errc::address_unix_path_too_long},
  };
  for (auto& c : cases) {
    auto a = address::parse(c.text);
    ASSERT_FALSE(a) << c.text;
    EXPECT_EQ(a.error(), c.why) << c.text << ": " << a.error().message();
    EXPECT_TRUE(graceful::is_address_error(a.error())) << c.text;
  }
}

TEST(address, every_error_has_its_own_message_in_the_core_category) {
  std::set<std::string> seen;
  for (int v = static_cast<int>(errc::address_empty); v <= static_cast<int>(errc::address_unix_path_too_long); ++v) {
    std::error_code ec = static_cast<errc>(v);
    EXPECT_STREQ(ec.category().name(), "graceful.core");
    EXPECT_TRUE(seen.insert(ec.message()).second) << ec.message();
    EXPECT_TRUE(graceful::is_address_error(ec));
  }
  EXPECT_FALSE(graceful::is_address_error(std::make_error_code(std::errc::address_in_use)));
  EXPECT_FALSE(graceful::is_address_error({}));
}

TEST(address, wildcard_requests_match_a_wildcard_socket_of_either_family) {
  // systemd's ListenStream=80 binds [::]:80; ":80" and "0.0.0.0:80" ask for the same thing.
  auto v6_any = parsed("[::]:80");
  for (const char* want : {":80", "*:80", "0.0.0.0:80", "[::]:80", "[::]:0", ":0"})
    EXPECT_TRUE(parsed(want).matched_by(v6_any)) << want;
  EXPECT_TRUE(parsed("[::]:80").matched_by(parsed("0.0.0.0:80")));
  EXPECT_FALSE(parsed(":81").matched_by(v6_any));
  // A specific address is not the wildcard, in either direction.
  EXPECT_FALSE(parsed("127.0.0.1:80").matched_by(v6_any));
  EXPECT_FALSE(parsed(":80").matched_by(parsed("127.0.0.1:80")));
}

TEST(address, matching_needs_family_and_address_and_port_zero_is_any) {
  EXPECT_TRUE(parsed("127.0.0.1:0").matched_by(parsed("127.0.0.1:4321")));
  EXPECT_TRUE(parsed("127.0.0.1:4321").matched_by(parsed("127.0.0.1:4321")));
  EXPECT_FALSE(parsed("127.0.0.1:4321").matched_by(parsed("127.0.0.1:4322")));
  EXPECT_FALSE(parsed("127.0.0.1:0").matched_by(parsed("127.0.0.2:4321")));
  EXPECT_FALSE(parsed("[::1]:0").matched_by(parsed("127.0.0.1:4321")));
  EXPECT_TRUE(parsed("[::1]:0").matched_by(parsed("[::1]:9")));
  EXPECT_TRUE(parsed("unix:/tmp/a").matched_by(parsed("/tmp/a")));
  EXPECT_FALSE(parsed("unix:/tmp/a").matched_by(parsed("unix:/tmp/b")));
  EXPECT_FALSE(parsed("unix:/tmp/a").matched_by(parsed("127.0.0.1:0")));
}

TEST(listen_socket, opens_a_listening_socket_on_port_0_and_reports_its_address) {
  auto fd = graceful::open_listen_socket("127.0.0.1:0");
  ASSERT_TRUE(fd) << fd.error().message();
  int acc = 0;
  socklen_t len = sizeof acc;
  ASSERT_EQ(::getsockopt(fd.value().get(), SOL_SOCKET, SO_ACCEPTCONN, &acc, &len), 0);
  EXPECT_EQ(acc, 1);
  auto bound = address::of_socket(fd.value().get());
  ASSERT_TRUE(bound);
  EXPECT_NE(bound.value().port(), 0);
  EXPECT_TRUE(parsed("127.0.0.1:0").matched_by(bound.value()));
  EXPECT_TRUE(bound.value().to_string().starts_with("127.0.0.1:"));
}

TEST(listen_socket, a_port_in_use_is_the_os_error) {
  auto first = graceful::open_listen_socket("127.0.0.1:0");
  ASSERT_TRUE(first);
  auto again = graceful::open_listen_socket(address::of_socket(first.value().get()).value());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::errc::address_in_use);
}

TEST(listen_socket, a_malformed_address_is_the_parse_error) {
  auto fd = graceful::open_listen_socket("127.0.0.1:http");
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error(), errc::address_bad_port);
}

TEST(listen_socket, opens_unix_sockets) {
  auto path = "/tmp/graceful-core-listen-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  auto fd = graceful::open_listen_socket("unix:" + path);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(address::of_socket(fd.value().get()).value().to_string(), "unix:" + path);
  // The file stays: a second bind is refused rather than stealing the path.
  EXPECT_EQ(graceful::open_listen_socket(path).error(), std::errc::address_in_use);
  ::unlink(path.c_str());
}

} // namespace
