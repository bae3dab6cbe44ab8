// examples/echo-server: a user's own Asio loop stopped through the lifecycle alone.
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "process.hpp"

using graceful::deadline;
using graceful::test::child;
using namespace std::chrono_literals;

namespace {

int listening_port(child& c) {
  return graceful::test::logged_port(c, "listening on 127.0.0.1:", deadline::after(5s));
}

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};  // every read below is bounded
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string echo(int fd, const std::string& msg) {
  if (::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) return "<send failed>";
  std::string got;
  char buf[256];
  while (got.size() < msg.size()) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return got + "<closed>";
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

} // namespace

TEST(echo_server, echoes_and_on_sigterm_closes_idle_connections_and_exits_zero) {
  child c({.argv = {graceful::test::bin("echo-server"), "--listen", "127.0.0.1:0", "--shutdown-timeout", "5s"}});
  int port = listening_port(c);
  ASSERT_GT(port, 0) << c.output();
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(echo(fd, "hello graceful"), "hello graceful");
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
  char b;
  EXPECT_EQ(::recv(fd, &b, 1, 0), 0) << "the idle connection is closed cleanly (EOF, not a reset)";
  ::close(fd);
  EXPECT_NE(c.output().find("phase shutting_down finished in"), std::string::npos) << c.output();
}

TEST(echo_server, keeps_serving_new_connections_during_the_drain_delay) {
  child c({.argv = {graceful::test::bin("echo-server"), "--listen", "127.0.0.1:0", "--drain-delay", "1s"}});
  int port = listening_port(c);
  ASSERT_GT(port, 0) << c.output();
  c.signal(SIGTERM);
  ASSERT_TRUE(c.wait_for_output("phase draining started", deadline::after(5s))) << c.output();
  int fd = connect_to(port);
  ASSERT_GE(fd, 0) << "load balancers still route here during the drain delay";
  EXPECT_EQ(echo(fd, "still here"), "still here");
  EXPECT_FALSE(c.wait(deadline::after(100ms)).has_value()) << "exited before the drain delay ended";
  // The open connection is idle: shutdown closes it and the process exits cleanly.
  EXPECT_EQ(c.wait(deadline::after(10s)), 0) << c.output();
  ::close(fd);
}

TEST(echo_server, bad_flags_exit_with_code_2) {
  for (std::vector<std::string> args : {std::vector<std::string>{"--no-such-flag"},
                                        {"--listen", "not-an-address"},
                                        {"--shutdown-timeout", "soon"},
                                        {"--shutdown-timeout", "0"},
                                        {"--drain-delay", "-1s"},
                                        {"--log-level", "loud"},
                                        {"--takeover", "/tmp/x"}}) {
    args.insert(args.begin(), graceful::test::bin("echo-server"));
    child c({.argv = args});
    EXPECT_EQ(c.wait(deadline::after(5s)), 2) << args[1] << "\n" << c.output();
    EXPECT_NE(c.output().find("echo-server: "), std::string::npos) << c.output();
  }
}
