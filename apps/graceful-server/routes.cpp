#include "routes.hpp"

#include <charconv>
#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace graceful_server {

namespace asio = boost::asio;
namespace http = graceful::http;

namespace {

std::optional<long> number_param(const http::request& r, std::string_view key, long max) {
  auto v = r.query_param(key);
  if (!v) return std::nullopt;
  long n = -1;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc{} || end != v->data() + v->size() || n < 0 || n > max) return -1;
  return n;
}

void bad_request(http::context& c, std::string_view why) {
  c.response.status = 400;
  c.response.body = std::string(why) + "\n";
}

void metrics(app& a, http::context& c) {
  auto s = a.server->stats();
  std::string& o = c.response.body;
  c.response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  o += "# HELP graceful_http_requests_total HTTP responses sent, by status code.\n";
  o += "# TYPE graceful_http_requests_total counter\n";
  for (auto& [code, n] : s.responses_by_status)
    o += "graceful_http_requests_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
  o += "# HELP graceful_http_in_flight_requests Requests received and not yet answered.\n";
  o += "# TYPE graceful_http_in_flight_requests gauge\n";
  o += "graceful_http_in_flight_requests " + std::to_string(s.in_flight_requests) + "\n";
  o += "# HELP graceful_http_open_connections Client connections open now.\n";
  o += "# TYPE graceful_http_open_connections gauge\n";
  o += "graceful_http_open_connections " + std::to_string(s.open_connections) + "\n";
  o += "# HELP graceful_http_connections_accepted_total Client connections accepted.\n";
  o += "# TYPE graceful_http_connections_accepted_total counter\n";
  o += "graceful_http_connections_accepted_total " + std::to_string(s.accepted_connections) + "\n";
  o += "# HELP graceful_http_cut_requests_total Requests in flight cut at a shutdown deadline (no complete response).\n";
  o += "# TYPE graceful_http_cut_requests_total counter\n";
  o += "graceful_http_cut_requests_total " + std::to_string(s.cut_requests) + "\n";
  o += "# HELP graceful_http_cut_connections_total Connections still open and cut at a shutdown deadline.\n";
  o += "# TYPE graceful_http_cut_connections_total counter\n";
  o += "graceful_http_cut_connections_total " + std::to_string(s.cut_connections) + "\n";
  o += "# HELP graceful_http2_streams_total HTTP/2 streams answered, by status code.\n";
  o += "# TYPE graceful_http2_streams_total counter\n";
  for (auto& [code, n] : s.http2_streams_by_status)
    o += "graceful_http2_streams_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
  o += "# HELP graceful_http2_connections_accepted_total HTTP/2 connections (prior knowledge or h2c upgrade).\n";
  o += "# TYPE graceful_http2_connections_accepted_total counter\n";
  o += "graceful_http2_connections_accepted_total " + std::to_string(s.http2_connections) + "\n";
  o += "# HELP graceful_http2_goaways_sent_total GOAWAY frames sent (shutdown notices, final GOAWAYs, errors).\n";
  o += "# TYPE graceful_http2_goaways_sent_total counter\n";
  o += "graceful_http2_goaways_sent_total " + std::to_string(s.http2_goaways_sent) + "\n";
  o += "# HELP graceful_http2_streams_refused_total Streams refused (REFUSED_STREAM) after the final GOAWAY.\n";
  o += "# TYPE graceful_http2_streams_refused_total counter\n";
  o += "graceful_http2_streams_refused_total " + std::to_string(s.http2_streams_refused) + "\n";
  o += "# HELP graceful_http2_streams_reset_total Streams the client reset (RST_STREAM received).\n";
  o += "# TYPE graceful_http2_streams_reset_total counter\n";
  o += "graceful_http2_streams_reset_total " + std::to_string(s.http2_streams_reset) + "\n";
  o += "# HELP graceful_lifecycle_phase The current lifecycle phase (1 for the current one).\n";
  o += "# TYPE graceful_lifecycle_phase gauge\n";
  auto now = a.lifecycle.current_phase();
  for (int p = 0; p <= 4; ++p) {
    auto ph = static_cast<graceful::lifecycle::phase>(p);
    o += "graceful_lifecycle_phase{phase=\"" + std::string(to_string(ph)) + "\"} " + (ph == now ? "1" : "0") + "\n";
  }
  o += "# HELP graceful_http_last_shutdown_duration_seconds How long the last completed HTTP shutdown took.\n";
  o += "# TYPE graceful_http_last_shutdown_duration_seconds gauge\n";
  o += "graceful_http_last_shutdown_duration_seconds " +
       std::to_string(std::chrono::duration<double>(s.last_shutdown_duration).count()) + "\n";
}

} // namespace

http::router make_routes(app& a) {
  http::router r;
  r.get("/", [](http::context& c) { c.response.body = "Hello, World!\n"; });

  r.get("/slow", [](http::context& c) -> asio::awaitable<void> {
    // A plain Asio timer: the thread serves other connections meanwhile. Shutdown does not
    // cut it short: an in-flight request completes (that is the point).
    auto ms = number_param(c.request, "ms", 600'000);
    if (!ms || *ms < 0) {
      bad_request(c, "want /slow?ms=N with 0 <= N <= 600000");
      co_return;
    }
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(*ms));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    c.response.body = "slept " + std::to_string(*ms) + " ms\n";
  });

  r.post("/echo", [](http::context& c) {
    c.response.body = c.request.body();
    auto ct = c.request.header("Content-Type");
    c.response.content_type = ct ? std::string(*ct) : "application/octet-stream";
  });

  r.get("/stream", [](http::context& c) -> asio::awaitable<void> {
    auto chunks = number_param(c.request, "chunks", 1'000'000);
    auto ms = number_param(c.request, "ms", 600'000);
    if ((chunks && *chunks < 0) || (ms && *ms < 0)) {
      bad_request(c, "want /stream?chunks=N&ms=M with N <= 1000000, M <= 600000");
      co_return;
    }
    long n = chunks.value_or(10), gap = ms.value_or(100);
    for (long i = 0; i < n; ++i) {
      // (co_await results go to a variable first: GCC 12 miscompiles co_await inside an
      // if condition, resuming a finished frame.)
      bool sent = co_await c.write_chunk("chunk " + std::to_string(i) + "\n");
      if (!sent) co_return;
      if (i + 1 == n) break;
      // Shutdown began: end the stream cleanly (terminating chunk) instead of being cut.
      bool slept = co_await c.sleep_or_stop(std::chrono::milliseconds(gap));
      if (!slept) {
        co_await c.write_chunk("stream ended early: server shutting down\n");
        co_return;
      }
    }
  });

  r.get("/metrics", [&a](http::context& c) { metrics(a, c); });
  return r;
}

} // namespace graceful_server
