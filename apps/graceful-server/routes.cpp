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

/// One metric family in Prometheus' text format: its HELP and TYPE lines, then one sample
/// per (labels, value) given to operator().
class family {
public:
  family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  /// A sample; `labels` is e.g. `code="200"` or empty.
  template <class V> family& operator()(V value, std::string_view labels = {}) {
    out_.append(name_);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(std::to_string(value)).append("\n");
    return *this;
  }

private:
  std::string& out_;
  std::string_view name_;
};

template <class Map> void by_code(family& f, const Map& counts) {
  for (auto& [code, n] : counts) f(n, "code=\"" + std::to_string(code) + "\"");
}

void metrics(app& a, http::context& c) {
  auto s = a.server->stats();
  std::string& o = c.response.body;
  c.response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  family requests(o, "graceful_http_requests_total", "counter", "HTTP responses sent, by status code.");
  by_code(requests, s.responses_by_status);
  family(o, "graceful_http_in_flight_requests", "gauge", "Requests received and not yet answered.")(s.in_flight_requests);
  family(o, "graceful_http_open_connections", "gauge", "Client connections open now.")(s.open_connections);
  family(o, "graceful_http_connections_accepted_total", "counter", "Client connections accepted.")(s.accepted_connections);
  family(o, "graceful_http_cut_requests_total", "counter",
         "Requests in flight cut at a shutdown deadline (no complete response).")(s.cut_requests);
  family(o, "graceful_http_cut_connections_total", "counter",
         "Connections still open and cut at a shutdown deadline.")(s.cut_connections);
  family streams(o, "graceful_http2_streams_total", "counter", "HTTP/2 streams answered, by status code.");
  by_code(streams, s.http2_streams_by_status);
  family(o, "graceful_http2_connections_accepted_total", "counter",
         "HTTP/2 connections (prior knowledge or h2c upgrade).")(s.http2_connections);
  family(o, "graceful_http2_goaways_sent_total", "counter",
         "GOAWAY frames sent (shutdown notices, final GOAWAYs, errors).")(s.http2_goaways_sent);
  family(o, "graceful_http2_streams_refused_total", "counter",
         "Streams refused (REFUSED_STREAM) after the final GOAWAY.")(s.http2_streams_refused);
  family(o, "graceful_http2_streams_reset_total", "counter",
         "Streams the client reset (RST_STREAM received).")(s.http2_streams_reset);
  family phase(o, "graceful_lifecycle_phase", "gauge", "The current lifecycle phase (1 for the current one).");
  auto now = a.lifecycle.current_phase();
  for (int p = 0; p <= 4; ++p) {
    auto ph = static_cast<graceful::lifecycle::phase>(p);
    phase(ph == now ? 1 : 0, "phase=\"" + std::string(to_string(ph)) + "\"");
  }
  family(o, "graceful_http_last_shutdown_duration_seconds", "gauge", "How long the last completed HTTP shutdown took.")(
      std::chrono::duration<double>(s.last_shutdown_duration).count());
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
