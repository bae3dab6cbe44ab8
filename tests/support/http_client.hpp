#pragma once
// Test support: a deliberately dumb blocking HTTP/1.1 client over a raw TCP socket, so tests
// control every byte (pipelining, partial headers, half-close) and can tell a FIN from a RST.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <graceful/core/deadline.hpp>

namespace graceful::test {

/// One parsed response.
struct http_response {
  int status = 0;
  std::map<std::string, std::string> headers;  ///< names lower-cased; last value wins
  std::string body;                            ///< chunked coding removed
  /// The header value, or "" when absent.
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool closes() const { return header("connection") == "close"; }
};

/// How a read ended.
enum class read_end { data, eof, reset, timeout, error };

/// A TCP connection to 127.0.0.1:port.
class http_conn {
public:
  /// Connects; `connected()` tells whether it worked (errno_value() says why not).
  explicit http_conn(int port);
  ~http_conn();
  http_conn(const http_conn&) = delete;
  http_conn& operator=(const http_conn&) = delete;

  bool connected() const noexcept { return fd_ >= 0; }
  int errno_value() const noexcept { return err_; }
  int fd() const noexcept { return fd_; }

  /// Sends all of `bytes`. False on error (errno_value() and last_end() say which).
  bool send(std::string_view bytes);
  /// Reads one full response (Content-Length, chunked, or until EOF) until `d`.
  /// nullopt if the connection ended or timed out first (see last_end()).
  std::optional<http_response> read_response(graceful::deadline d);
  /// Reads until the peer closes or `d` passes; returns eof (FIN), reset (RST) or timeout.
  /// On eof/reset it closes the socket, as a real client does.
  read_end read_until_close(graceful::deadline d);
  /// How the last read ended.
  read_end last_end() const noexcept { return end_; }
  /// Reads until the received bytes contain `needle` (not consumed). False on end/timeout.
  bool wait_for(std::string_view needle, graceful::deadline d);
  /// Half-closes our side (shutdown SHUT_WR).
  void shutdown_write();
  /// Bytes received but not consumed by a parsed response.
  const std::string& leftover() const noexcept { return buf_; }

private:
  bool fill(graceful::deadline d);
  int fd_ = -1;
  int err_ = 0;
  std::string buf_;
  read_end end_ = read_end::data;
};

/// "GET path HTTP/1.1" with Host, plus `extra` header lines (each ending in \r\n).
std::string get_request(std::string_view path, std::string_view extra = {});

/// Connects, sends one GET with Connection: close, reads the parsed response (5 s budget).
/// nullopt when the connection was refused, reset or ended before a full response.
std::optional<http_response> http_get(int port, std::string_view path);

/// Connects to 127.0.0.1:port, sends `request` (if any) and returns every byte received until
/// EOF (5 s at most): the raw text a user would see. Empty when the connection was refused or
/// reset, so a test can assert "served" or "not served" without parsing.
std::string fetch(int port, std::string_view request = {});
/// fetch() of "GET path" with Connection: close: the unparsed response text, or "".
std::string http_get_text(int port, std::string_view path = "/");

} // namespace graceful::test
