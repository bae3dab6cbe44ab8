#pragma once
/// \file
/// The run configuration graceful-bench's command line produces.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace graceful::bench {

/// Where requests go: an http:// URL split into what the engine needs.
struct target {
  std::string host;         ///< as written in the URL (name or address)
  std::string port = "80";  ///< default port of http://
  std::string path = "/";   ///< path and query, sent verbatim as the request-target
  std::string host_header;  ///< Host: value, host[:port] as in the URL (RFC 9112 3.2)
};

/// Every knob of one run. Defaults are what `graceful-bench URL` does.
struct bench_options {
  std::string url;
  target where;
  unsigned connections = 10;                         ///< -c: concurrent connections
  unsigned threads = 0;                              ///< -t: 0 = one per core (capped at -c)
  std::chrono::nanoseconds duration = std::chrono::seconds(10);   ///< -d
  std::optional<double> rate;                        ///< --rate: total req/s, open loop; none = closed loop
  bool close = false;                                ///< --close: a new connection per request
  /// --think: closed loop with a pause of this (jittered uniformly over 50%..150%) between a
  /// connection's requests, so that connections sit idle in the pool as real clients' do.
  /// None: the next request goes as soon as the response is in.
  std::optional<std::chrono::nanoseconds> think;
  /// --strict: reuse a keep-alive connection without checking it first (a naive client): a
  /// close that arrived while it sat idle makes the next request fail instead of reconnecting.
  bool strict = false;
  /// --h2: HTTP/2 over cleartext with prior knowledge (h2_load.hpp); -c connections each
  /// carry `streams` requests at once.
  bool h2 = false;
  unsigned streams = 1;                              ///< -m: concurrent streams per connection (--h2)
  std::string method = "GET";                        ///< --method
  std::vector<std::string> headers;                  ///< -H: extra "Name: value" request headers
  std::uint64_t body_size = 0;                       ///< --body-size: request body bytes ('x'), with Content-Length
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);   ///< --timeout: per request, connect included
  /// --fail-pause: after a failed request a closed-loop connection waits this long before its
  /// next one, so a refused port is sampled rather than hammered (counts stay comparable
  /// between runs); open loop keeps its schedule instead.
  std::chrono::nanoseconds fail_pause = std::chrono::milliseconds(10);
  std::optional<std::chrono::nanoseconds> at;        ///< --at: when to run --exec, from start
  std::string exec;                                  ///< --exec: shell command run at --at
  std::string json_path;                             ///< --json FILE ("-" = stdout)
  std::string plot_path;                             ///< --plot FILE.png
};

} // namespace graceful::bench
