#pragma once
/// \file
/// Settings of an HTTP server, each default written and explained beside it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <graceful/core/options_error.hpp>

namespace spdlog { class logger; }

namespace graceful::http {

/// Options of a server. Checked once, by validate() (the server constructor calls it and
/// throws std::invalid_argument with its message, since a constructor cannot return one).
struct options {
  /// Event loops (threads). 0 (default): one per core (std::thread::hardware_concurrency),
  /// like nginx's `worker_processes auto`. Each loop accepts on its own copy of every
  /// listener and keeps its connections, so the request path never crosses threads.
  unsigned threads = 0;

  /// Time a client has to send a complete request header once its connection is open or its
  /// first byte arrived. Default 10 s: slowloris clients trickling headers are cut after it.
  std::chrono::milliseconds header_read_timeout{std::chrono::seconds(10)};
  /// Time a keep-alive connection may wait for its next request. Default 60 s (nginx: 75 s);
  /// shorter than the usual 60-350 s idle timeout of load balancers is NOT required because
  /// an idle close is race-free only for the side that closes first: keep this below the
  /// client's or put a proxy in front.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  /// Time to receive a whole request body once the header is in. Default 60 s.
  std::chrono::milliseconds body_read_timeout{std::chrono::seconds(60)};
  /// Time each write of a response (or of one stream chunk) may take. Default 30 s: a client
  /// that stops reading is dropped instead of holding the connection forever.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};

  /// During shutdown, how long a connection without a complete request (idle keep-alive, or
  /// new) may still send one before it is closed. Default 500 ms: a busy keep-alive client
  /// sends its next request well within it, gets it answered with `Connection: close`, and
  /// so loses nothing (cutting idle connections at once, as Go does, fails that request).
  std::chrono::milliseconds shutdown_idle_grace{500};
  /// Lingering close: after the last response, shut the write side and read and discard
  /// input for at most this long before closing, so that unread pipelined bytes do not
  /// make the kernel send a RST that destroys the response in flight (RFC 9112 9.6).
  /// Default 1 s; the client normally closes much sooner after reading our FIN.
  std::chrono::milliseconds linger_timeout{std::chrono::seconds(1)};
  /// Lingering close discards at most this many bytes before closing anyway. Default 256 KiB.
  std::size_t linger_max_bytes = 256 * 1024;
  /// Lingering close ends as soon as the kernel reports every byte of the response
  /// acknowledged by the client and nothing unread, once no input has arrived for this long
  /// (or for 4 x the connection's lowest measured round-trip time, when that is longer):
  /// a client that got its response but keeps its socket open no longer holds the
  /// connection, and so the exit, for linger_timeout. Input that arrives restarts the quiet
  /// time, so a client that pipelines a request after our FIN is drained, not reset;
  /// linger_timeout and linger_max_bytes still bound the whole. Default 1 ms: what a client
  /// had queued before it saw our FIN arrives within one round trip of it, and the 4 round
  /// trips cover any path slower than 250 us; a longer floor only delays the exit (a client
  /// that pipelines after the FIN: 2 ms gave 5.2-6.2 ms from delivery to exit, 1 ms 4.9;
  /// bench/RESULTS.md). 0: close the moment the response is acknowledged.
  std::chrono::milliseconds linger_quiet{1};

  /// Largest request line + header accepted; more gets 431. Default 32 KiB (nginx: 4 x 8 KiB).
  std::size_t max_header_bytes = 32 * 1024;
  /// Largest request body accepted (after chunked decoding); more gets 413. Default 8 MiB.
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  /// Open connections at most; beyond it the accept loop pauses (clients wait in the kernel
  /// backlog instead of being refused). Default 100000: enough for 10,000 idle keep-alive
  /// clients with room, while bounding memory.
  std::size_t max_connections = 100000;
  /// listen() backlog for sockets the server creates. Default 4096 (the kernel caps it at
  /// net.core.somaxconn).
  int backlog = 4096;
  /// Value of the Server response header. Default "graceful"; empty: no Server header.
  std::string server_name = "graceful";

  /// HTTP/2 over cleartext on the same listeners: prior knowledge (the connection preface,
  /// detected on the first bytes) and `Upgrade: h2c`. Default on; off: HTTP/1.1 only (a
  /// preface then gets 400, an h2c upgrade request is answered over HTTP/1.1).
  bool http2 = true;
  /// SETTINGS_MAX_CONCURRENT_STREAMS of each HTTP/2 connection. Default 100 (RFC 9113
  /// 5.1.2 recommends no less). Header list size and body size limits are max_header_bytes
  /// and max_body_bytes; body_read_timeout applies per stream, write_timeout to a stream
  /// the client grants no flow-control window, idle_timeout to a connection with no stream.
  std::uint32_t http2_max_concurrent_streams = 100;
  /// Receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE). Default 1 MiB: an upload
  /// of that size needs no WINDOW_UPDATE round trip.
  std::uint32_t http2_stream_window = 1u << 20;
  /// Shutdown, between the GOAWAY notice and the final GOAWAY: the longest wait for the
  /// PING round trip that proves the client saw the notice. Default 1 s (nghttpx waits a
  /// fixed 1 s; a round trip on a LAN is well under 1 ms).
  std::chrono::milliseconds http2_ping_timeout{std::chrono::seconds(1)};

  /// Logger for one line per event (accept errors, handler exceptions). Null (default):
  /// spdlog's default logger, as lifecycle::options and upgrade::options do.
  std::shared_ptr<spdlog::logger> logger{};
};

/// What validate() found wrong with an options struct (the type every layer's validate() returns).
using options_error = graceful::options_error;

/// Checks every field of `o` once. Returns the first bad field, or nothing when all are valid.
/// threads == 0 is valid (one loop per core).
std::optional<options_error> validate(const options& o);

} // namespace graceful::http
