#pragma once
/// \file
/// What happened to every request: one outcome class each, counted per worker thread
/// into preallocated arrays (no allocation on the request path) and merged at the end.

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "histogram.hpp"

namespace graceful::bench {

using clock = std::chrono::steady_clock;

/// The one class each request ends in.
enum class outcome : std::uint8_t {
  ok,                      ///< a 2xx or 3xx response arrived completely
  http_error,              ///< a 4xx or 5xx response arrived completely (counted by code too)
  connect_refused,         ///< connect() got ECONNREFUSED: nothing listens on the port
  connection_reset,        ///< ECONNRESET/EPIPE while sending or waiting: the peer sent RST
  closed_before_response,  ///< EOF before the response was complete (incl. a request written on a
                           ///< keep-alive connection that showed no sign of close, then got EOF)
  timeout,                 ///< no complete response within --timeout
  other,                   ///< anything else: unparsable response, 1xx final, local errors
};
inline constexpr std::size_t outcome_count = 7;

/// Stable machine name of a class (the --json key).
constexpr std::string_view outcome_key(outcome o) noexcept {
  constexpr std::array<std::string_view, outcome_count> keys{
      "ok", "http_error", "connect_refused", "connection_reset",
      "closed_before_response", "timeout", "other"};
  return keys[static_cast<std::size_t>(o)];
}
/// Human label of a class.
constexpr std::string_view outcome_label(outcome o) noexcept {
  constexpr std::array<std::string_view, outcome_count> labels{
      "ok", "http error", "connect refused", "connection reset",
      "closed before response", "timeout", "other"};
  return labels[static_cast<std::size_t>(o)];
}

using outcome_counts = std::array<std::uint64_t, outcome_count>;

/// Why a client's connection was replaced by a new one. None of these is a failure: each is
/// what a careful pooled client (Go's Transport, urllib3) does too.
enum class reconnect_cause : std::uint8_t {
  closed_while_idle,  ///< FIN/RST (or unsolicited bytes) arrived while the connection sat idle
  connection_close,   ///< the response said `Connection: close` (or HTTP/1.0, or EOF-delimited body)
  after_failure,      ///< the previous request on it failed (that failure is counted already)
  goaway,             ///< HTTP/2: the server sent GOAWAY (shutdown notice or final)
};
inline constexpr std::size_t reconnect_cause_count = 4;

/// Stable machine name of a cause (the --json key).
constexpr std::string_view reconnect_key(reconnect_cause c) noexcept {
  constexpr std::array<std::string_view, reconnect_cause_count> keys{"closed_while_idle", "connection_close",
                                                                     "after_failure", "goaway"};
  return keys[static_cast<std::size_t>(c)];
}
/// Human label of a cause.
constexpr std::string_view reconnect_label(reconnect_cause c) noexcept {
  constexpr std::array<std::string_view, reconnect_cause_count> labels{
      "closed while idle", "Connection: close", "after a failure", "GOAWAY (HTTP/2)"};
  return labels[static_cast<std::size_t>(c)];
}

/// Connections opened (connect() completed), and how many of them replaced a previous one.
struct connection_counts {
  std::uint64_t opened = 0;
  std::array<std::uint64_t, reconnect_cause_count> reconnects{};
  /// HTTP/2: requests the server said it did not process (REFUSED_STREAM, above a GOAWAY's
  /// last stream id) and that were sent again on a new connection. Not failures.
  std::uint64_t retried_streams = 0;

  std::uint64_t reconnects_total() const noexcept {
    std::uint64_t t = 0;
    for (auto v : reconnects) t += v;
    return t;
  }
  void merge(const connection_counts& o) noexcept {
    opened += o.opened;
    retried_streams += o.retried_streams;
    for (std::size_t i = 0; i < reconnect_cause_count; ++i) reconnects[i] += o.reconnects[i];
  }
};

/// One second of the timeline (requests attributed to the second they were meant to be sent).
struct second_stats {
  outcome_counts counts{};
  coarse_histogram latency;  ///< latencies of requests that got a complete response
  connection_counts connections;  ///< connections that opened in this second
};

/// One 100 ms slot, for the plot.
struct slot_stats {
  std::uint32_t ok = 0;
  std::uint32_t failed = 0;
  std::uint32_t max_us = 0;
};

/// Everything one worker thread records. Sized once before the run.
struct run_stats {
  outcome_counts counts{};
  connection_counts connections;
  std::array<std::uint64_t, 600> by_status{};  ///< complete responses by status code
  fine_histogram latency;                      ///< every complete response
  outcome_counts window_counts{};              ///< requests sent in the second around the action
  fine_histogram window_latency;
  std::vector<second_stats> seconds;
  std::vector<slot_stats> slots;
  std::vector<std::uint64_t> success_ms;  ///< bit per millisecond: a success completed in it

  /// Sizes the timeline for `span` of run time (later events go to the last entry).
  void prepare(std::chrono::nanoseconds span) {
    const auto secs = static_cast<std::size_t>(std::chrono::duration_cast<std::chrono::seconds>(span).count()) + 2;
    seconds.resize(secs);
    slots.resize(secs * 10);
    success_ms.resize((secs * 1000 + 63) / 64);
  }

  /// Merges another worker's numbers into this one (same sizes).
  void merge(const run_stats& o) {
    for (std::size_t i = 0; i < outcome_count; ++i) {
      counts[i] += o.counts[i];
      window_counts[i] += o.window_counts[i];
    }
    connections.merge(o.connections);
    for (std::size_t i = 0; i < by_status.size(); ++i) by_status[i] += o.by_status[i];
    latency.merge(o.latency);
    window_latency.merge(o.window_latency);
    for (std::size_t i = 0; i < seconds.size() && i < o.seconds.size(); ++i) {
      for (std::size_t k = 0; k < outcome_count; ++k) seconds[i].counts[k] += o.seconds[i].counts[k];
      seconds[i].latency.merge(o.seconds[i].latency);
      seconds[i].connections.merge(o.seconds[i].connections);
    }
    for (std::size_t i = 0; i < slots.size() && i < o.slots.size(); ++i) {
      slots[i].ok += o.slots[i].ok;
      slots[i].failed += o.slots[i].failed;
      slots[i].max_us = std::max(slots[i].max_us, o.slots[i].max_us);
    }
    for (std::size_t i = 0; i < success_ms.size() && i < o.success_ms.size(); ++i)
      success_ms[i] |= o.success_ms[i];
  }
};

} // namespace graceful::bench
