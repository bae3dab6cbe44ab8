// The check before reusing an idle keep-alive connection, on real sockets: nothing readable
// means reuse; EOF, a reset or unsolicited bytes mean retire (and nothing is consumed).
#include "reuse_check.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace {

using graceful::bench::careful_reuse_check;
using graceful::bench::idle_state;

/// A connected TCP pair on 127.0.0.1 (port 0): client and the accepted server side.
struct tcp_pair {
  int client = -1, server = -1;
  tcp_pair() {
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(l, 1), 0);
    EXPECT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    server = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(l);
  }
  ~tcp_pair() {
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }
  /// Blocks until the client has something to read (EOF and RST count).
  void wait_readable() const {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(client, &r);
    ::select(client + 1, &r, nullptr, nullptr, nullptr);
  }
};

TEST(reuse_check, an_idle_connection_with_nothing_to_read_is_reused) {
  tcp_pair p;
  EXPECT_EQ(careful_reuse_check(p.client), idle_state::usable);
  EXPECT_EQ(careful_reuse_check(p.client), idle_state::usable);
}

TEST(reuse_check, a_fin_that_arrived_while_idle_retires_the_connection) {
  tcp_pair p;
  ::close(p.server);
  p.server = -1;
  p.wait_readable();
  EXPECT_EQ(careful_reuse_check(p.client), idle_state::dropped);
}

TEST(reuse_check, a_reset_that_arrived_while_idle_retires_the_connection) {
  tcp_pair p;
  linger l{1, 0};
  ::setsockopt(p.server, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(p.server);
  p.server = -1;
  p.wait_readable();
  EXPECT_EQ(careful_reuse_check(p.client), idle_state::dropped);
}

TEST(reuse_check, unsolicited_bytes_retire_the_connection_and_stay_unread) {
  tcp_pair p;
  ASSERT_EQ(::send(p.server, "HTTP/1.1 408", 12, 0), 12);
  p.wait_readable();
  EXPECT_EQ(careful_reuse_check(p.client), idle_state::dropped);
  char buf[16];
  EXPECT_EQ(::recv(p.client, buf, sizeof buf, MSG_DONTWAIT), 12) << "the check consumed bytes";
}

} // namespace
