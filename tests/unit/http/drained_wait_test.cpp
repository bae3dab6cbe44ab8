// async_wait_drained (src/http/drained_wait.hpp): a readiness wait on a socket the caller has
// just drained, with no system call. It must behave as async_wait(wait_read) does for such a
// socket: not complete while nothing arrives, complete on the next bytes or the peer's FIN,
// end with operation_aborted on cancel() and close(), and be destroyed, not called, with
// its io_context.
#include "http/drained_wait.hpp"

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using graceful::http::detail::async_wait_drained;
using namespace std::chrono_literals;

namespace {

/// A connected loopback pair: `server` accepted on ctx (registered with its reactor, as the
/// HTTP server's connections are), `client` a blocking socket of its own context.
struct pair {
  asio::io_context ctx{1};
  asio::io_context client_ctx;
  tcp::socket server{ctx};
  tcp::socket client{client_ctx};

  pair() {
    tcp::acceptor acc(ctx, {asio::ip::make_address("127.0.0.1"), 0});
    client.connect(acc.local_endpoint());
    acc.accept(server);
  }

  /// What the precondition asks: a read that found the socket empty.
  bool drain() {
    char b[64];
    return ::recv(server.native_handle(), b, sizeof b, MSG_DONTWAIT) < 0 && errno == EAGAIN;
  }

  /// Drains the socket, then starts the wait under test; `got` receives its result.
  void start_wait(std::optional<error_code>& got) {
    ASSERT_TRUE(drain());
    async_wait_drained(server, [&got](const error_code& ec) { got = ec; });
  }

  /// Runs ctx until `done` is set or 5 s pass.
  void run_until(const std::optional<error_code>& done) {
    auto until = std::chrono::steady_clock::now() + 5s;
    while (!done && std::chrono::steady_clock::now() < until) {
      ctx.restart();
      ctx.run_for(10ms);
    }
  }
};

TEST(drained_wait, does_not_complete_while_nothing_arrives) {
  pair p;
  std::optional<error_code> got;
  p.start_wait(got);
  p.ctx.run_for(100ms);
  EXPECT_FALSE(got) << "completed with nothing to read";
  p.server.cancel();
  p.run_until(got);
}

TEST(drained_wait, completes_when_bytes_arrive) {
  pair p;
  std::optional<error_code> got;
  p.start_wait(got);
  p.ctx.run_for(20ms);
  ASSERT_FALSE(got);
  asio::write(p.client, asio::buffer("GET / HTTP/1.1\r\n\r\n", 18));
  p.run_until(got);
  ASSERT_TRUE(got) << "the bytes' arrival did not end the wait";
  EXPECT_FALSE(*got) << got->message();
  char b[64];
  EXPECT_EQ(::recv(p.server.native_handle(), b, sizeof b, MSG_DONTWAIT), 18);
}

TEST(drained_wait, completes_again_for_the_next_bytes_after_each_drain) {
  // A keep-alive connection's cycle: read all, wait, read all, wait.
  pair p;
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("round " + std::to_string(i));
    std::optional<error_code> got;
    p.start_wait(got);
    asio::write(p.client, asio::buffer("x", 1));
    p.run_until(got);
    ASSERT_TRUE(got);
    EXPECT_FALSE(*got) << got->message();
    char b[8];
    EXPECT_EQ(::recv(p.server.native_handle(), b, sizeof b, MSG_DONTWAIT), 1);
  }
}

TEST(drained_wait, completes_when_the_peer_closes) {
  pair p;
  std::optional<error_code> got;
  p.start_wait(got);
  p.client.close();
  p.run_until(got);
  ASSERT_TRUE(got) << "the FIN did not end the wait";
  EXPECT_FALSE(*got) << got->message();
  char b[8];
  EXPECT_EQ(::recv(p.server.native_handle(), b, sizeof b, MSG_DONTWAIT), 0);
}

/// What a pending wait ends with when `end` is done to its socket.
error_code ended_by(void (*end)(tcp::socket&)) {
  pair p;
  std::optional<error_code> got;
  p.start_wait(got);
  p.ctx.run_for(20ms);
  end(p.server);
  p.run_until(got);
  return got.value_or(error_code());
}

TEST(drained_wait, cancel_ends_it_with_operation_aborted) {
  EXPECT_EQ(ended_by([](tcp::socket& s) { s.cancel(); }), asio::error::operation_aborted);
}

TEST(drained_wait, close_ends_it_with_operation_aborted) {
  EXPECT_EQ(ended_by([](tcp::socket& s) { s.close(); }), asio::error::operation_aborted);
}

TEST(drained_wait, a_pending_wait_is_destroyed_with_its_context_without_being_called) {
  auto guard = std::make_shared<int>(0);
  bool called = false;
  {
    pair p;
    ASSERT_TRUE(p.drain());
    async_wait_drained(p.server, [&called, g = guard](const error_code&) { called = true; });
    p.ctx.run_for(20ms);
    EXPECT_EQ(guard.use_count(), 2) << "the handler is held by the pending wait";
  }
  EXPECT_FALSE(called);
  EXPECT_EQ(guard.use_count(), 1) << "the handler was not destroyed with the context";
}

} // namespace
