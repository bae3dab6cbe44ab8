#pragma once
/// \file
/// Readiness by URL: a plain HTTP/1.1 GET over TCP to 127.0.0.1, without blocking the loop.

#include <cstdint>
#include <string>
#include <string_view>

#include <graceful/core/result.hpp>

#include "fd.hpp"

namespace graceful::run {

/// A parsed readiness URL: http://127.0.0.1:PORT/PATH or http://localhost:PORT/PATH.
struct ready_url {
  std::uint16_t port = 0;
  std::string path = "/";
  std::string text;  ///< as given, for logs
};

/// Parses a readiness URL; only http:// to the loopback address is accepted, because a
/// probe is meant to reach this host's worker, not a load balancer in front of it.
graceful::result<ready_url> parse_ready_url(std::string_view url);

/// One probe in flight: connect, send GET, read the status line. 2xx means ready.
class http_probe {
public:
  /// Progress of a probe.
  enum class outcome { pending, ready, not_ready };

  /// Starts a non-blocking connect to the URL.
  static graceful::result<http_probe> start(const ready_url& url);

  /// The fd to poll.
  int fd() const noexcept { return fd_.get(); }
  /// poll(2) events the probe waits for now.
  short events() const noexcept;
  /// Advances on readiness of fd(); returns ready/not_ready once decided.
  outcome advance();
  /// Why the last probe said not_ready (for the log).
  const std::string& why() const noexcept { return why_; }

private:
  enum class step { connecting, sending, reading };
  unique_fd fd_;
  step step_ = step::connecting;
  std::string request_;
  std::size_t sent_ = 0;
  std::string response_;
  std::string why_;
};

} // namespace graceful::run
