#pragma once
// HTTP/1.1 response serialisation: status line, reason phrases, header fields.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <graceful/http/message.hpp>

#include "core/ascii.hpp"

namespace graceful::http::detail {

/// The reason phrase of `status` (RFC 9110 15); "Status" for codes without one here.
std::string_view reason_phrase(int status) noexcept;
using graceful::detail::iequals;  // ASCII case-insensitive (header names, `close`)
/// False for 1xx, 204 and 304, whose responses never carry content (RFC 9110 6.4.1).
inline bool status_has_body(int s) noexcept { return !(s < 200 || s == 204 || s == 304); }
/// True when the handler set `Connection: close` on `res`.
bool wants_close(const response& res) noexcept;

/// How a response head is framed.
struct head_framing {
  std::size_t content_length = 0;  ///< written as Content-Length unless chunked or no_length
  bool chunked = false;            ///< Transfer-Encoding: chunked
  bool no_length = false;          ///< neither (the body ends with the close)
  bool close = false;              ///< Connection: close
  bool http10 = false;             ///< the request was HTTP/1.0 (keep-alive must be explicit)
};

/// Appends a head's first lines to `out`: the status line, Server (when `server_name` is not
/// empty) and Date. The one place they are formatted: per response for most statuses, once
/// per second for the loop's stamp of a 200 (loop::stamp).
void append_status_lines(std::string& out, int status, std::string_view server_name, std::string_view date);

/// What every response head of the current second starts with, kept by the loop
/// (loop::stamp): read once per response.
struct head_stamp {
  std::string_view date;     ///< the Date value (RFC 9110 5.6.7 IMF-fixdate)
  std::string_view ok_head;  ///< a 200's status line, Server and Date fields; empty: formatted per response
};

/// Appends HTTP/1.1 responses to one output string (the connection's write batch).
class response_writer {
public:
  /// `server_name` empty: no Server header.
  response_writer(std::string& out, std::string_view server_name) noexcept : out_(out), server_name_(server_name) {}

  /// Status line and header fields of `res` (its own Content-Length, Transfer-Encoding and
  /// Connection fields are replaced by the framing's), then the blank line. A 200 starts
  /// with the stamp's ok_head as it is; other statuses are formatted with its date.
  void head(const response& res, const head_stamp& stamp, const head_framing& f);
  /// A whole response with Content-Length: head, then the body unless `head_request` or
  /// the status has none. A status outside 100..599 becomes 500.
  void whole(response& res, const head_stamp& stamp, bool close, bool http10, bool head_request);
  /// One chunk of a chunked body.
  void chunk(std::string_view data);
  /// The last chunk of a chunked body (no trailer fields).
  void last_chunk() { out_ += "0\r\n\r\n"; }

private:
  std::string& out_;
  std::string_view server_name_;
};

} // namespace graceful::http::detail
