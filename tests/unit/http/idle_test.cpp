// Idle connections: an HTTP/1.1 connection waiting for its (next) request holds no coroutine
// and no request state (http1_connection.hpp), and its loop's one idle timer ends it. What a
// client sees must be what it saw when each connection waited in its own coroutine: the idle
// timeout and header_read_timeout close it (FIN), bytes wake it up in any order, HTTP/2
// prior knowledge is still recognised on the first bytes, shutdown gives it the grace,
// close() cuts it, and a client that leaves is unregistered.
#include <graceful/http/server.hpp>

#include <cerrno>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "http_test_server.hpp"

using namespace graceful::test;
using graceful::deadline;
namespace http = graceful::http;

namespace {

/// Waits until the server lists `n` connections in `state` (the SIGUSR1 dump's text).
bool wait_state(test_server& ts, const std::string& state, std::size_t n) {
  return eventually(
      [&] {
        auto text = ts.server->describe(secs(2));
        std::size_t count = 0;
        for (auto p = text.find("state=" + state + " "); p != std::string::npos;
             p = text.find("state=" + state + " ", p + 1))
          ++count;
        return count >= n;
      },
      secs(5));
}

/// True once nothing accepts on `port`: every loop closed its listener, so every loop is
/// draining (a loop closes it as its shutdown begins).
bool refused(int port) {
  http_conn c(port);
  return !c.connected() && c.errno_value() == ECONNREFUSED;
}

} // namespace

TEST(http_idle, many_idle_keep_alive_connections_each_get_a_fin_at_the_idle_timeout_and_are_served_until_then) {
  http::options o = test_server::small_options();
  o.idle_timeout = std::chrono::seconds(3);  // ample for the wake-ups below, even under sanitizers
  test_server ts(o);
  const int n = 40;
  std::vector<std::unique_ptr<http_conn>> conns;
  for (int i = 0; i < n; ++i) {
    conns.push_back(std::make_unique<http_conn>(ts.port));
    ASSERT_TRUE(conns.back()->send(get_request("/")));
    auto r = conns.back()->read_response(secs(5));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->closes());
  }
  ASSERT_TRUE(wait_state(ts, "idle", n));
  // Woken up in an order unrelated to the one they went idle in: each is served again.
  for (int i = n - 1; i >= 0; i -= 2) {
    ASSERT_TRUE(conns[static_cast<std::size_t>(i)]->send(get_request("/")));
    auto r = conns[static_cast<std::size_t>(i)]->read_response(secs(5));
    ASSERT_TRUE(r) << "connection " << i;
    EXPECT_EQ(r->body, "hello");
  }
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(conns[static_cast<std::size_t>(i)]->read_until_close(secs(10)), read_end::eof) << "connection " << i;
  EXPECT_TRUE(eventually([&] { return ts.server->stats().open_connections == 0; }, secs(5)));
  auto st = ts.server->stats();
  EXPECT_EQ(st.accepted_connections, static_cast<std::uint64_t>(n));
  std::map<int, std::uint64_t> m(st.responses_by_status.begin(), st.responses_by_status.end());
  EXPECT_EQ(m[200], static_cast<std::uint64_t>(n + n / 2));
}

TEST(http_idle, a_new_connection_that_sends_nothing_gets_a_fin_at_the_header_read_timeout) {
  http::options o = test_server::small_options();
  o.header_read_timeout = std::chrono::milliseconds(200);
  test_server ts(o);
  http_conn c(ts.port);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(wait_state(ts, "new", 1));
  EXPECT_EQ(c.read_until_close(secs(5)), read_end::eof);
  EXPECT_TRUE(eventually([&] { return ts.server->stats().open_connections == 0; }, secs(5)));
}

TEST(http_idle, a_new_connection_that_waits_before_its_first_request_is_served) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(wait_state(ts, "new", 1));
  // Split across two writes after the wait: the first bytes wake it, the rest is read on.
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHo"));
  ASSERT_TRUE(wait_state(ts, "reading-header", 1));
  ASSERT_TRUE(c.send("st: a\r\n\r\n"));
  auto r = c.read_response(secs(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
}

TEST(http_idle, prior_knowledge_http2_is_recognised_on_a_connection_that_waited_before_its_preface) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(wait_state(ts, "new", 1));
  // The preface, then an empty SETTINGS frame (RFC 9113 3.4): the server's first frame is
  // its SETTINGS (type 4), not an HTTP/1.1 status line.
  std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  preface += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  ASSERT_TRUE(c.send(preface));
  ASSERT_TRUE(eventually([&] { return ts.server->stats().http2_connections == 1; }, secs(5)));
  ASSERT_TRUE(c.wait_for(std::string("\x04\x00\x00\x00\x00\x00", 6), secs(5)));  // SETTINGS on stream 0
  ASSERT_GE(c.leftover().size(), 9u);
  EXPECT_EQ(static_cast<unsigned char>(c.leftover()[3]), 4u) << "first frame type";
  EXPECT_NE(c.leftover().substr(0, 5), "HTTP/");
}

TEST(http_idle, an_idle_connection_is_listed_as_idle_with_its_requests) {
  test_server ts;
  http_conn c(ts.port);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.send(get_request("/")));
    ASSERT_TRUE(c.read_response(secs(5)));
  }
  ASSERT_TRUE(wait_state(ts, "idle", 1));
  auto text = ts.server->describe(secs(2));
  EXPECT_NE(text.find("state=idle age="), std::string::npos) << text;
  EXPECT_NE(text.find("requests=2"), std::string::npos) << text;
}

TEST(http_idle, a_client_that_closes_its_idle_connection_is_unregistered) {
  test_server ts;
  {
    http_conn c(ts.port);
    ASSERT_TRUE(c.send(get_request("/")));
    ASSERT_TRUE(c.read_response(secs(5)));
    ASSERT_TRUE(wait_state(ts, "idle", 1));
    EXPECT_EQ(ts.server->stats().open_connections, 1u);
  }
  EXPECT_TRUE(eventually([&] { return ts.server->stats().open_connections == 0; }, secs(5)));
}

TEST(http_idle, at_shutdown_every_idle_connection_gets_the_grace_for_one_last_request_then_a_fin) {
  http::options o = test_server::small_options();
  o.shutdown_idle_grace = std::chrono::milliseconds(1500);
  test_server ts(o);
  const int n = 20;
  std::vector<std::unique_ptr<http_conn>> conns;
  for (int i = 0; i < n; ++i) {
    conns.push_back(std::make_unique<http_conn>(ts.port));
    ASSERT_TRUE(conns.back()->send(get_request("/")));
    ASSERT_TRUE(conns.back()->read_response(secs(5)));
  }
  ASSERT_TRUE(wait_state(ts, "idle", n));
  auto done = std::async(std::launch::async, [&] { return ts.server->shutdown(secs(20)); });
  ASSERT_TRUE(eventually([&] { return refused(ts.port); }, secs(5)));
  // Half of them send a last request within the grace: answered, with Connection: close.
  for (int i = 0; i < n; i += 2) {
    auto& c = *conns[static_cast<std::size_t>(i)];
    ASSERT_TRUE(c.send(get_request("/")));
    auto r = c.read_response(secs(5));
    ASSERT_TRUE(r) << "connection " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->closes());
  }
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(conns[static_cast<std::size_t>(i)]->read_until_close(secs(10)), read_end::eof) << "connection " << i;
  EXPECT_TRUE(done.get());
  EXPECT_EQ(ts.server->stats().cut_connections, 0u);
}
