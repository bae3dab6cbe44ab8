#pragma once
/// \file
/// What a handler receives: the request, the response to fill, and the few connection
/// operations a handler may need (streaming, a sleep that ends when shutdown begins).

#include <chrono>
#include <string_view>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>

#include <graceful/http/message.hpp>

namespace graceful::http {

namespace detail { class stream_sink; }

/// One request being handled. Valid until the handler returns (for a coroutine handler:
/// until its coroutine completes).
class context {
public:
  /// The request.
  const http::request& request;
  /// The response the handler fills in; sent when the handler returns.
  http::response& response;

  /// Sends `data` as one chunk of a `Transfer-Encoding: chunked` response (an HTTP/1.0 client
  /// gets the raw bytes and a close). The first call sends the status line and headers from
  /// `response`; `response.body` is then ignored; the server ends the stream when the handler
  /// returns. Returns false once the client is gone or too slow (write_timeout): stop then.
  boost::asio::awaitable<bool> write_chunk(std::string_view data);
  /// Waits `d` without holding a thread. Returns false early when shutdown (or close) begins,
  /// so that long streams and long polls can end themselves cleanly.
  boost::asio::awaitable<bool> sleep_or_stop(std::chrono::milliseconds d);
  /// True once the server's shutdown began (the same as request.stop_token().stop_requested()).
  bool stopping() const noexcept { return request.stop_token().stop_requested(); }

  context(const context&) = delete;
  context& operator=(const context&) = delete;

private:
  // Made by the library only (detail::message_access::make_context), for the connection
  // (HTTP/1.1 today, an HTTP/2 stream next) that implements the stream operations.
  friend struct detail::message_access;
  context(const http::request& req, http::response& res, detail::stream_sink& s) noexcept
      : request(req), response(res), sink_(&s) {}
  detail::stream_sink* sink_;
};

} // namespace graceful::http
