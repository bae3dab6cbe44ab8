#pragma once
/// \file
/// The request a handler sees and the response it fills in. Both live in their connection
/// and are reused for its next request: a handler must not keep references past its return.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace graceful::http {

namespace detail { struct message_access; }

/// One header field as received (value without surrounding whitespace).
struct header_field {
  std::string_view name;   ///< as the client spelled it
  std::string_view value;  ///< as the client sent it
};

/// A parsed request (HTTP/1.x, or one HTTP/2 stream). Views stay valid until the handler returns.
class request {
public:
  /// The method token as sent ("GET", "POST", ...).
  std::string_view method() const noexcept { return method_; }
  /// The request target as sent ("/slow?ms=10").
  std::string_view target() const noexcept { return target_; }
  /// The target before '?'.
  std::string_view path() const noexcept { return path_; }
  /// The target after '?' (empty when none).
  std::string_view query() const noexcept { return query_; }
  /// The raw (not percent-decoded) value of the first `key=value` in the query, if any.
  std::optional<std::string_view> query_param(std::string_view key) const noexcept;
  /// The first header named `name` (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  /// Every header field in arrival order.
  const std::vector<header_field>& headers() const noexcept { return headers_; }
  /// The body, chunked coding removed.
  const std::string& body() const noexcept { return body_; }
  /// 10 for HTTP/1.0, 11 for HTTP/1.1, 20 for HTTP/2.
  int version() const noexcept { return version_; }
  /// True when the client asked to keep the connection open after this request.
  bool keep_alive() const noexcept { return keep_alive_; }
  /// Requested once the server's shutdown begins: long streams and long polls end themselves.
  const std::stop_token& stop_token() const noexcept;
  /// When the request header was complete.
  std::chrono::steady_clock::time_point received() const noexcept { return received_; }

private:
  friend struct detail::message_access;  // the protocols fill requests and read responses
  std::string_view method_, target_, path_, query_;
  int version_ = 11;
  bool keep_alive_ = true;
  std::vector<header_field> headers_;
  std::string body_;
  std::string arena_;  // owns the bytes method_/target_/headers_ view
  const std::stop_token* stop_ = nullptr;
  std::chrono::steady_clock::time_point received_{};
};

/// What a handler answers. Content-Length, Date, Server and Connection are written by the
/// server; a handler that sets `Connection: close` gets its connection closed after it.
class response {
public:
  /// Status code. Default 200.
  int status = 200;
  /// Body sent with Content-Length (ignored once a stream started, see context::write_chunk).
  std::string body;
  /// Content-Type. Default "text/plain; charset=utf-8".
  std::string content_type{default_content_type};
  /// Adds a header field (not checked: the handler must send valid tokens, no CR/LF).
  void add_header(std::string name, std::string value) { headers_.emplace_back(std::move(name), std::move(value)); }
  /// The extra header fields added so far.
  const std::vector<std::pair<std::string, std::string>>& headers() const noexcept { return headers_; }

  /// Content-Type used unless a handler sets another.
  static constexpr std::string_view default_content_type = "text/plain; charset=utf-8";

private:
  friend struct detail::message_access;
  std::vector<std::pair<std::string, std::string>> headers_;
};

} // namespace graceful::http
