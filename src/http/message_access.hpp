#pragma once
// The one door through which the protocols reach the private parts of request, response
// and context: an HTTP/1.1 connection and (next) an HTTP/2 stream fill requests the same
// way and read responses the same way, without each being a friend of the public types.

#include <chrono>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include <graceful/http/context.hpp>
#include <graceful/http/message.hpp>

namespace graceful::http::detail {

class stream_sink;

struct message_access {
  /// The request's HTTP version (10 or 11; an HTTP/2 stream leaves 11).
  static int version(const request& r) noexcept { return r.version_; }
  /// The client asked to keep the connection (HTTP/1.x only).
  static bool keep_alive(const request& r) noexcept { return r.keep_alive_; }
  /// Marks the request as complete now and ties its stop_token to the loop's.
  static void start(request& r, const std::stop_token& stop) noexcept {
    r.received_ = std::chrono::steady_clock::now();
    r.stop_ = &stop;
  }
  /// The extra header fields a handler added, for the serialiser to write.
  static const std::vector<std::pair<std::string, std::string>>& headers(const response& r) noexcept {
    return r.headers_;
  }
  /// Forgets the handler's extra header fields (capacity kept).
  static void clear_headers(response& r) noexcept { r.headers_.clear(); }
  /// A context for one request, whose stream operations go to `sink`.
  static context make_context(const request& req, response& res, stream_sink& sink) noexcept {
    return context(req, res, sink);
  }
};

} // namespace graceful::http::detail
