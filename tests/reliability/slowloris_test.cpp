// Slowloris: many connections trickling a request header a byte at a time must not stop
// others from being served, must be cut by options::header_read_timeout, and must not hold
// shutdown() past its deadline. Runs the library server in-process so that the timeout can
// be short and the shutdown deadline observed exactly.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <graceful/http/server.hpp>

#include "http_client.hpp"
#include "process.hpp"
#include "processes.hpp"
#include "figure.hpp"
#include "graceful_server.hpp"

using namespace graceful::test;
using namespace std::chrono_literals;
namespace http = graceful::http;
using graceful::deadline;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int trickling_clients = 500;

http::router hello_routes() {
  http::router r;
  r.get("/", [](http::context& c) { c.response.body = "hello"; });
  return r;
}

/// Opens `n` connections that each sent the start of a request header and nothing more.
std::vector<std::unique_ptr<http_conn>> open_tricklers(int port, int n) {
  std::vector<std::unique_ptr<http_conn>> v;
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<http_conn>(port);
    EXPECT_TRUE(c->connected()) << "connection " << i << ": errno " << c->errno_value();
    EXPECT_TRUE(c->send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: "));
    v.push_back(std::move(c));
  }
  return v;
}

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

} // namespace

TEST(slowloris, trickling_clients_do_not_stop_others_and_are_cut_by_the_header_read_timeout) {
  raise_nofile(4 * trickling_clients + 256);
  http::options o;
  o.threads = 2;
  o.header_read_timeout = 1s;
  http::server srv(hello_routes(), o);
  auto port = srv.listen("127.0.0.1:0");
  ASSERT_TRUE(port) << port.error().message();

  auto start = clock_type::now();
  auto slow = open_tricklers(port.value(), trickling_clients);
  // When each trickler saw the server close it (ms after the first one connected; -1: not yet).
  std::vector<double> cut_at(slow.size(), -1);
  auto check_cut = [&](std::size_t i, graceful::deadline d) {
    auto end = slow[i]->read_until_close(d);
    if (end == read_end::eof || end == read_end::reset) cut_at[i] = ms_since(start);
  };
  int normal_ok = 0, normal_total = 0;
  double worst_ms = 0;
  // Trickle one byte per connection every 100 ms for 2.5 s (well past the 1 s timeout),
  // and meanwhile fetch / as a normal client would.
  while (ms_since(start) < 2500) {
    for (std::size_t i = 0; i < slow.size(); ++i) {
      if (cut_at[i] >= 0) continue;
      check_cut(i, deadline::after(0ms));  // closed by now? (FIN seen, without waiting)
      if (cut_at[i] < 0 && !slow[i]->send("a")) cut_at[i] = ms_since(start);  // our byte met a RST
    }
    auto t = clock_type::now();
    auto r = http_get(port.value(), "/");
    worst_ms = std::max(worst_ms, ms_since(t));
    ++normal_total;
    if (r && r->status == 200 && r->body == "hello") ++normal_ok;
    std::this_thread::sleep_for(100ms);
  }
  // Every trickler must now be closed by the server (FIN, or RST for bytes sent after it).
  auto d = deadline::after(5s);
  for (std::size_t i = 0; i < slow.size(); ++i)
    if (cut_at[i] < 0) check_cut(i, d);
  int closed = 0, still_open = 0;
  double first_cut = 1e9, last_cut = 0;
  for (double t : cut_at) {
    if (t < 0) {
      ++still_open;
      continue;
    }
    ++closed;
    first_cut = std::min(first_cut, t);
    last_cut = std::max(last_cut, t);
  }
  figure("slowloris: " + std::to_string(trickling_clients) + " trickling connections; normal client " +
         std::to_string(normal_ok) + "/" + std::to_string(normal_total) + " x 200 meanwhile (slowest " +
         std::to_string(static_cast<int>(worst_ms)) + " ms); " + std::to_string(closed) +
         " cut by the 1 s header timeout (seen closed " + std::to_string(static_cast<int>(first_cut)) + "-" +
         std::to_string(static_cast<int>(last_cut)) + " ms after the first connect), " + std::to_string(still_open) +
         " left open");
  EXPECT_EQ(normal_ok, normal_total);
  EXPECT_GE(normal_total, 10);
  EXPECT_EQ(closed, trickling_clients);
  EXPECT_EQ(still_open, 0);
  // Cut by the header timeout: never before it (each timer starts at its accept, after the
  // connects began), and close to it: within a generous margin for the trickle loop's
  // period and a loaded machine (x5 under sanitizers), far below the 10 s default.
  EXPECT_GE(first_cut, 1000) << "cut before the header read timeout";
  EXPECT_LE(last_cut, 1000 + static_cast<double>(scaled(1500ms).count())) << "not cut near the header read timeout";
}

TEST(slowloris, trickling_clients_do_not_hold_shutdown_past_its_deadline) {
  raise_nofile(4 * trickling_clients + 256);
  http::options o;
  o.threads = 2;
  o.header_read_timeout = 60s;  // they are not cut by the timeout here: shutdown must do it
  http::server srv(hello_routes(), o);
  auto port = srv.listen("127.0.0.1:0");
  ASSERT_TRUE(port) << port.error().message();
  auto slow = open_tricklers(port.value(), trickling_clients);
  // Keep trickling while the server shuts down, so every connection always has fresh bytes.
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    while (!stop) {
      for (auto& c : slow)
        if (c->connected()) (void)c->send("a");
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(300ms);

  const auto budget = 2s;
  auto t = clock_type::now();
  auto r = srv.shutdown(deadline::after(budget));
  double took = ms_since(t);
  if (!r) srv.close();  // the documented second verb after a shutdown timeout
  stop = true;
  trickler.join();
  auto d = deadline::after(5s);
  int closed = 0;
  for (auto& c : slow) {
    auto end = c->read_until_close(d);
    if (end == read_end::eof || end == read_end::reset) ++closed;
  }
  figure("slowloris: shutdown with " + std::to_string(trickling_clients) + " trickling connections returned after " +
         std::to_string(static_cast<int>(took)) + " ms (deadline 2000 ms, " +
         (r ? std::string("drained") : "timed out: " + r.error().message() + ", then close()") + "); " +
         std::to_string(closed) + "/" + std::to_string(trickling_clients) + " connections closed");
  EXPECT_LT(took, 2000 + 1000) << "shutdown held past its deadline";
  EXPECT_EQ(closed, trickling_clients);
  EXPECT_EQ(srv.stats().open_connections, 0u);
}
