#pragma once
// A server with test routes on 127.0.0.1:<ephemeral>, and the events its handlers record.

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <graceful/http/server.hpp>

#include "http_client.hpp"
#include "process.hpp"

namespace graceful::test {

/// Ordered log of what happened, across threads.
struct event_log {
  std::mutex m;
  std::vector<std::string> events;
  void add(std::string e) {
    std::lock_guard lk(m);
    events.push_back(std::move(e));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lk(m);
    return events;
  }
  /// Index of the first event equal to `e`, or -1.
  int index_of(const std::string& e) {
    std::lock_guard lk(m);
    for (std::size_t i = 0; i < events.size(); ++i)
      if (events[i] == e) return static_cast<int>(i);
    return -1;
  }
};

inline http::router test_routes(event_log& log) {
  namespace asio = boost::asio;
  http::router r;
  r.get("/", [](http::context& c) { c.response.body = "hello"; });
  r.get("/slow", [&log](http::context& c) -> asio::awaitable<void> {
    long ms = std::stol(std::string(c.request.query_param("ms").value_or("100")));
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    c.response.body = "slept";
    log.add("slow handler done");
  });
  r.post("/echo", [](http::context& c) { c.response.body = c.request.body(); });
  r.get("/stream", [](http::context& c) -> asio::awaitable<void> {
    for (int i = 0; i < 1000; ++i) {
      bool sent = co_await c.write_chunk("tick\n");
      if (!sent) co_return;
      bool slept = co_await c.sleep_or_stop(std::chrono::milliseconds(20));
      if (!slept) break;
    }
    co_await c.write_chunk("bye\n");
  });
  r.get("/wait-stop", [&log](http::context& c) -> asio::awaitable<void> {
    for (;;) {
      bool slept = co_await c.sleep_or_stop(std::chrono::seconds(5));
      if (!slept) break;
    }
    c.response.body = c.request.stop_token().stop_requested() ? "stopped" : "not stopped";
    log.add("wait-stop handler done");
  });
  r.get("/throw", [](http::context&) { throw std::runtime_error("boom"); });
  return r;
}

/// A running server on an ephemeral port.
struct test_server {
  event_log log;
  std::unique_ptr<http::server> server;
  int port = 0;

  explicit test_server(http::options o = small_options()) {
    server = std::make_unique<http::server>(test_routes(log), o);
    auto p = server->listen("127.0.0.1:0");
    EXPECT_TRUE(p) << p.error().message();
    port = p ? p.value() : 0;
  }
  static http::options small_options() {
    http::options o;
    o.threads = 2;
    return o;
  }
  /// Waits until `n` requests are in flight (5 s at most).
  bool wait_in_flight(std::uint64_t n) {
    return eventually([&] { return server->stats().in_flight_requests >= n; },
                      deadline::after(std::chrono::seconds(5)));
  }
};

inline graceful::deadline secs(int s) { return graceful::deadline::after(std::chrono::seconds(s)); }

/// Routes `/` and `/block`. A request for /block holds its loop's thread (a sync handler)
/// until `release` is set, so that clients, bytes and posted work pile up meanwhile.
struct loop_blocker {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> blocked{false};
  http::router routes() {
    http::router r;
    r.get("/", [](http::context& c) { c.response.body = "hello"; });
    r.get("/block", [this](http::context& c) {
      blocked = true;
      released.wait();
      c.response.body = "unblocked";
    });
    return r;
  }
};

} // namespace graceful::test
