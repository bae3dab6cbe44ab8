#include <graceful/upgrade/listeners.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <graceful/upgrade/errc.hpp>

#include "processes.hpp"

namespace up = graceful::upgrade;

namespace {

// A TCP socket on 127.0.0.1 with an ephemeral port; listening unless told otherwise.
up::unique_fd tcp_socket(bool listening = true) {
  up::unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  if (listening) {
    EXPECT_EQ(::listen(s.get(), 16), 0);
  }
  return s;
}

ino_t inode(int fd) {
  struct stat st{};
  ::fstat(fd, &st);
  return st.st_ino;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

} // namespace

TEST(listeners, creates_a_listening_socket_when_none_was_inherited) {
  up::listeners l;
  auto fd = l.listen("http", "127.0.0.1:0");
  ASSERT_TRUE(fd) << fd.error().message();
  int acc = 0;
  socklen_t len = sizeof acc;
  ::getsockopt(fd.value().get(), SOL_SOCKET, SO_ACCEPTCONN, &acc, &len);
  EXPECT_EQ(acc, 1);
  EXPECT_EQ(::fcntl(fd.value().get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(l.origin_of("http"), up::origin::created);
  auto port = graceful::test::port_of(up::local_address(fd.value().get()));
  EXPECT_GT(port, 0);
  EXPECT_EQ(up::local_address(fd.value().get()), "127.0.0.1:" + std::to_string(port));
  ASSERT_EQ(l.active().size(), 1u);
  EXPECT_EQ(l.active()[0].name, "http");
}

TEST(listeners, returns_the_inherited_socket_with_that_name_instead_of_binding) {
  auto s = tcp_socket();
  auto addr = up::local_address(s.get());
  int raw = s.release();
  auto l = up::listeners::adopt({{"http", raw}}, up::origin::parent);
  ASSERT_TRUE(l) << l.error().message();
  // The same address would fail with EADDRINUSE if it bound a new socket.
  auto fd = l.value().listen("http", addr);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(inode(fd.value().get()), inode(raw)) << "must be the same kernel socket";
  EXPECT_NE(fd.value().get(), raw) << "the caller gets its own duplicate";
  EXPECT_EQ(l.value().origin_of("http"), up::origin::parent);
}

TEST(listeners, port_zero_matches_the_inherited_port) {
  auto s = tcp_socket();
  auto l = up::listeners::adopt({{"http", s.release()}}, up::origin::parent);
  ASSERT_TRUE(l);
  EXPECT_TRUE(l.value().listen("http", "127.0.0.1:0"));
}

TEST(listeners, closing_the_returned_fd_keeps_the_socket_for_the_next_process) {
  up::listeners l;
  auto fd = l.listen("http", "127.0.0.1:0");
  ASSERT_TRUE(fd);
  int port = graceful::test::port_of(up::local_address(fd.value().get()));
  fd.value().reset();
  ASSERT_EQ(l.active().size(), 1u);
  EXPECT_EQ(graceful::test::port_of(up::local_address(l.active()[0].fd)), port);
}

TEST(listeners, creates_a_socket_for_a_name_that_was_not_inherited) {
  auto s = tcp_socket();
  auto l = up::listeners::adopt({{"http", s.release()}}, up::origin::systemd);
  ASSERT_TRUE(l);
  auto admin = l.value().listen("admin", "127.0.0.1:0");
  ASSERT_TRUE(admin);
  EXPECT_EQ(l.value().origin_of("admin"), up::origin::created);
  EXPECT_EQ(l.value().unclaimed(), std::vector<std::string>{"http"});
}

TEST(listeners, close_unclaimed_closes_inherited_sockets_nobody_asked_for) {
  auto a = tcp_socket(), b = tcp_socket();
  int ra = a.release(), rb = b.release();
  auto l = up::listeners::adopt({{"http", ra}, {"old-admin", rb}}, up::origin::parent);
  ASSERT_TRUE(l);
  ASSERT_TRUE(l.value().listen("http", "127.0.0.1:0"));
  EXPECT_EQ(l.value().close_unclaimed(), std::vector<std::string>{"old-admin"});
  EXPECT_TRUE(is_open(ra));
  EXPECT_FALSE(is_open(rb)) << "a listener removed in the new version must stop existing";
  EXPECT_EQ(l.value().active().size(), 1u);
}

TEST(listeners, adopt_rejects_a_forged_fd_that_is_not_a_socket_and_leaves_it_open) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto s = tcp_socket();
  auto l = up::listeners::adopt({{"http", s.get()}, {"admin", p[0]}}, up::origin::systemd);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error(), up::errc::invalid_inherited_fd);
  EXPECT_TRUE(is_open(p[0])) << "an fd that is not ours must not be closed";
  EXPECT_TRUE(is_open(s.get()));
  ::close(p[0]);
  ::close(p[1]);
}

TEST(listeners, adopt_rejects_a_closed_fd) {
  auto l = up::listeners::adopt({{"http", 1000}}, up::origin::systemd);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error(), up::errc::invalid_inherited_fd);
}

TEST(listeners, adopt_rejects_two_sockets_with_one_name) {
  auto a = tcp_socket(), b = tcp_socket();
  auto l = up::listeners::adopt({{"http", a.get()}, {"http", b.get()}}, up::origin::parent);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error(), up::errc::duplicate_name);
}

TEST(listeners, rejects_an_inherited_socket_that_is_not_listening) {
  auto s = tcp_socket(false);
  auto l = up::listeners::adopt({{"http", s.release()}}, up::origin::parent);
  ASSERT_TRUE(l);
  auto fd = l.value().listen("http", "127.0.0.1:0");
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error(), up::errc::invalid_inherited_fd);
}

TEST(listeners, rejects_an_inherited_socket_bound_to_another_address) {
  auto s = tcp_socket();
  int port = graceful::test::port_of(up::local_address(s.get()));
  auto l = up::listeners::adopt({{"http", s.release()}}, up::origin::parent);
  ASSERT_TRUE(l);
  auto other_port = l.value().listen("http", "127.0.0.1:" + std::to_string(port == 65535 ? 1 : port + 1));
  ASSERT_FALSE(other_port);
  EXPECT_EQ(other_port.error(), up::errc::address_mismatch);
}

TEST(listeners, rejects_an_inherited_socket_of_another_family) {
  auto s = tcp_socket();
  auto l = up::listeners::adopt({{"http", s.release()}}, up::origin::parent);
  ASSERT_TRUE(l);
  auto v6 = l.value().listen("http", "[::1]:0");
  ASSERT_FALSE(v6);
  EXPECT_EQ(v6.error(), up::errc::address_mismatch);
}

TEST(listeners, a_wildcard_request_matches_an_inherited_dual_stack_wildcard_socket) {
  // What systemd's ListenStream=PORT makes: [::]:PORT.
  up::unique_fd s(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) GTEST_SKIP() << "no IPv6";
  ASSERT_EQ(::listen(s.get(), 16), 0);
  int port = graceful::test::port_of(up::local_address(s.get()));
  for (std::string want : {":" + std::to_string(port), "0.0.0.0:" + std::to_string(port), std::string("[::]:0")}) {
    up::unique_fd copy(::fcntl(s.get(), F_DUPFD_CLOEXEC, 3));
    auto l = up::listeners::adopt({{"http", copy.release()}}, up::origin::systemd);
    ASSERT_TRUE(l);
    EXPECT_TRUE(l.value().listen("http", want)) << want;
  }
  // A specific address is not the wildcard: a clear error rather than serving elsewhere.
  auto l = up::listeners::adopt({{"http", s.release()}}, up::origin::systemd);
  ASSERT_TRUE(l);
  auto fd = l.value().listen("http", "127.0.0.1:" + std::to_string(port));
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error(), up::errc::address_mismatch);
}

TEST(listeners, rejects_an_inherited_udp_socket) {
  up::unique_fd u(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  auto l = up::listeners::adopt({{"http", u.release()}}, up::origin::systemd);
  ASSERT_TRUE(l);
  auto fd = l.value().listen("http", "127.0.0.1:0");
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error(), up::errc::invalid_inherited_fd);
}

TEST(listeners, refuses_one_name_twice) {
  up::listeners l;
  ASSERT_TRUE(l.listen("http", "127.0.0.1:0"));
  auto again = l.listen("http", "127.0.0.1:0");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), up::errc::duplicate_name);
}

TEST(listeners, rejects_malformed_addresses) {
  up::listeners l;
  for (const char* bad : {"", "8080", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "[::1:80", "::1:80",
                          "unix:", "no-such-host.invalid:80"}) {
    auto fd = l.listen("x", bad);
    ASSERT_FALSE(fd) << bad;
    EXPECT_TRUE(graceful::is_address_error(fd.error())) << bad << ": " << fd.error().message();
  }
}

TEST(listeners, reports_a_port_in_use_as_the_os_error) {
  auto s = tcp_socket();
  up::listeners l;
  auto fd = l.listen("http", up::local_address(s.get()));
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error(), std::errc::address_in_use);
}

TEST(listeners, listens_on_unix_sockets) {
  auto path = "/tmp/graceful-listeners-test-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  up::listeners l;
  auto u = l.listen("local", "unix:" + path);
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(up::local_address(u.value().get()), "unix:" + path);
  ::unlink(path.c_str());
}

TEST(listeners, listen_inherited_claims_every_inherited_socket_whatever_its_address) {
  auto a = tcp_socket(), b = tcp_socket();
  int ra = a.release(), rb = b.release();
  auto l = up::listeners::adopt({{"http", ra}, {"admin", rb}}, up::origin::systemd);
  ASSERT_TRUE(l);
  ASSERT_TRUE(l.value().listen("http", "127.0.0.1:0"));  // claimed already: not returned again
  auto got = l.value().listen_inherited();
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(got.value().size(), 1u);
  EXPECT_EQ(got.value()[0].name, "admin");
  EXPECT_EQ(inode(got.value()[0].fd.get()), inode(rb));
  EXPECT_TRUE(l.value().unclaimed().empty());
  EXPECT_TRUE(l.value().close_unclaimed().empty()) << "claimed sockets stay for the next process";
  EXPECT_EQ(l.value().active().size(), 2u);
}

TEST(listeners, listen_inherited_is_empty_when_nothing_was_inherited) {
  up::listeners l;
  auto got = l.listen_inherited();
  ASSERT_TRUE(got);
  EXPECT_TRUE(got.value().empty());
}

TEST(listeners, listen_inherited_rejects_a_socket_that_is_not_listening_and_claims_none) {
  auto a = tcp_socket(), b = tcp_socket(false);
  auto l = up::listeners::adopt({{"a", a.release()}, {"b", b.release()}}, up::origin::systemd);
  ASSERT_TRUE(l);
  auto got = l.value().listen_inherited();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), up::errc::invalid_inherited_fd);
  EXPECT_EQ(l.value().unclaimed().size(), 2u);
}

TEST(listeners, listens_on_ipv6_loopback) {
  // Skipped only where the machine itself cannot bind ::1; where it can, the listener must.
  up::unique_fd probe(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (::bind(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) GTEST_SKIP() << "no IPv6 loopback here";
  up::listeners l;
  auto v6 = l.listen("v6", "[::1]:0");
  ASSERT_TRUE(v6) << v6.error().message();
  EXPECT_TRUE(up::local_address(v6.value().get()).starts_with("[::1]:")) << up::local_address(v6.value().get());
}
