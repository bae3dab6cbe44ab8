#pragma once
// The one door through which the protocols reach the private parts of request, response
// and context: the HTTP/1.1 parser and connection and an HTTP/2 stream (h2_session) fill
// requests and read responses through it, without each being a friend of the public types.

#include <chrono>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <graceful/http/context.hpp>
#include <graceful/http/message.hpp>

namespace graceful::http::detail {

class stream_sink;

struct message_access {
  /// The request's HTTP version (10 or 11; 20 for an HTTP/2 stream).
  static int version(const request& r) noexcept { return r.version_; }
  /// The client asked to keep the connection (HTTP/1.x only).
  static bool keep_alive(const request& r) noexcept { return r.keep_alive_; }
  /// Marks the request as complete at `now` and ties its stop_token to the loop's.
  static void start(request& r, const std::stop_token& stop, std::chrono::steady_clock::time_point now) noexcept {
    r.received_ = now;
    r.stop_ = &stop;
  }
  /// The extra header fields a handler added, for the serialiser to write.
  static const std::vector<std::pair<std::string, std::string>>& headers(const response& r) noexcept {
    return r.headers_;
  }
  /// Forgets the handler's extra header fields (capacity kept).
  static void clear_headers(response& r) noexcept { r.headers_.clear(); }

  // ---- the HTTP/1.1 parser fills a request as the header arrives ----
  /// Empties `r` for the next request on a connection (buffers kept, an outsized body's freed).
  static void reset(request& r) {
    r.arena_.clear();
    r.body_.clear();
    if (r.body_.capacity() > 64 * 1024) r.body_.shrink_to_fit();
    r.headers_.clear();
    r.method_ = r.target_ = r.path_ = r.query_ = {};
    r.version_ = 11;
    r.keep_alive_ = true;
  }
  static void set_version(request& r, int v) noexcept { r.version_ = v; }
  static void set_keep_alive(request& r, bool k) noexcept { r.keep_alive_ = k; }
  /// Sets the method and target (views into arena()) and the path and query split from it.
  static void set_target(request& r, std::string_view method, std::string_view target) noexcept {
    r.method_ = method;
    r.target_ = target;
    auto q = target.find('?');
    r.path_ = target.substr(0, q);
    r.query_ = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  }

  // ---- HTTP/2: a stream's request is built from decoded header fields ----
  /// Readies `r` for an HTTP/2 stream: version 20, keep-alive (a stream never asks to close
  /// its connection), tied to the stop token `stop` (null: never requested).
  static void start_h2(request& r, const std::stop_token* stop) noexcept {
    r.version_ = 20;
    r.keep_alive_ = true;
    r.stop_ = stop;
  }
  /// The stop token `r` is tied to (null if none), to hand on to a copy.
  static const std::stop_token* stop(const request& r) noexcept { return r.stop_; }
  /// The bytes the request's views (method, target, header fields) point into.
  static std::string& arena(request& r) noexcept { return r.arena_; }
  /// The header fields, to fill with views into arena().
  static std::vector<header_field>& fields(request& r) noexcept { return r.headers_; }
  /// The body, to append to as DATA arrives.
  static std::string& body(request& r) noexcept { return r.body_; }
  /// Sets the method and target (views into arena()), path and query split from the target,
  /// and when the request head was complete.
  static void set_head(request& r, std::string_view method, std::string_view target,
                       std::chrono::steady_clock::time_point received) noexcept {
    set_target(r, method, target);
    r.received_ = received;
  }

  /// A context for one request, whose stream operations go to `sink`.
  static context make_context(const request& req, response& res, stream_sink& sink) noexcept {
    return context(req, res, sink);
  }
};

} // namespace graceful::http::detail
