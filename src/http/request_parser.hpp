#pragma once
/// \file
/// The incremental HTTP/1.x request parser every HTTP/1.1 connection uses. Private to the
/// library (not installed); the unit tests and fuzz targets include it from src/ to feed it
/// arbitrary bytes. Beast's basic_parser does the grammar; this
/// adds the server's limits, its status for each kind of bad input, and copies the request
/// into a reusable `request` (no allocation per request once buffers have grown).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include <graceful/http/message.hpp>

namespace graceful::http::detail {

/// Limits applied while parsing.
struct parse_limits {
  std::size_t max_header_bytes = 32 * 1024;  ///< request line + header; beyond: 431
  std::size_t max_body_bytes = 8 * 1024 * 1024;  ///< decoded body; beyond: 413
};

/// Parses one request at a time into a `request`.
class request_parser {
public:
  /// Where the current message stands.
  enum class state {
    need_more,    ///< give it more bytes
    header_done,  ///< header complete, body still to come (check expect_continue())
    complete,     ///< whole request parsed
    error,        ///< bad input: answer error_status() and close
  };

  explicit request_parser(parse_limits l = {});
  ~request_parser();
  request_parser(const request_parser&) = delete;
  request_parser& operator=(const request_parser&) = delete;

  /// Starts a new message that will be written into `into` (cleared first, capacity kept).
  void start(request& into);
  /// Feeds bytes; returns how many were consumed (the rest belongs to a later call: keep
  /// unconsumed header bytes and append to them, as the header must be contiguous).
  std::size_t feed(const char* data, std::size_t size);
  /// Tells the parser the client closed its side; returns state().
  state feed_eof();
  /// The current state.
  state current() const noexcept { return state_; }
  /// True once any byte of the current message was consumed.
  bool got_some() const noexcept;

  /// After error: 400, 413, 431, 501 or 505.
  int error_status() const noexcept { return error_status_; }
  /// After error: a short human reason for the response body.
  std::string_view error_reason() const noexcept { return error_reason_; }
  /// After header_done: the client sent `Expect: 100-continue` (HTTP/1.1) and waits for it.
  bool expect_continue() const noexcept { return expect_continue_; }
  /// After header_done: declared Content-Length, if any.
  std::optional<std::uint64_t> content_length() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
  state state_ = state::need_more;
  int error_status_ = 0;
  std::string_view error_reason_;
  bool expect_continue_ = false;
  friend struct impl;
};

} // namespace graceful::http::detail
