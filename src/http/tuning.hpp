#pragma once
// The HTTP layer's fixed numbers, in one place, each with the reason for its value. The
// ones a user may want to change are http::options instead; these are bounds on the
// server's own bookkeeping.

#include <chrono>
#include <cstddef>

namespace graceful::http::detail {

/// Bytes asked of the kernel per read. A typical request header fits; a larger one takes
/// a few reads (the buffer grows as needed, up to options::max_header_bytes).
inline constexpr std::size_t read_size = 4096;

/// Pipelined responses are batched into one write; beyond this many bytes the batch is
/// sent before the next request is parsed, bounding memory per connection.
inline constexpr std::size_t flush_threshold = 64 * 1024;

/// Output and body buffers keep their memory between requests (no allocation per request),
/// except above this size: one large response must not pin its memory for the life of
/// a keep-alive connection.
inline constexpr std::size_t shrink_threshold = 256 * 1024;

/// Spare HTTP/1.1 request states (parser, request, response, buffers, timers) a loop keeps
/// for the next idle connection that wakes up: an idle connection holds none, and taking
/// one from the spares instead of allocating keeps a wake-up free of those allocations.
/// Few: a busy connection keeps its state through its short idle waits (hot_idle_time),
/// and more would only be memory kept after a burst of connections (~1-2 KiB each).
inline constexpr std::size_t spare_states_max = 16;
/// An idle HTTP/1.1 connection waits this long in its coroutine (holding its request state)
/// before it parks without one (http1_connection.hpp): ending and starting the coroutine
/// at every keep-alive request cost ~6% CPU per request (bench/RESULTS.md), and a busy
/// client sends its next request well within this; a connection idle for longer costs its
/// small record only. Short, so that a burst of connections going idle pins little memory
/// (their request states and coroutine frames, given back 5 ms later).
inline constexpr std::chrono::milliseconds hot_idle_time{5};
/// Freed readiness-wait operations (~120 bytes) a loop keeps for the next idle connection.
inline constexpr std::size_t spare_ops_max = 256;

/// Lingering close, while the response is not yet acknowledged: the kernel gives no event
/// for an ACK, so the connection asks again after its lowest round-trip time, kept within
/// these bounds (the first keeps a loopback client from costing a wake-up per microsecond,
/// the second keeps the close, and so the exit, within a few ms of the delivery).
inline constexpr std::chrono::microseconds linger_poll_min{1000};
inline constexpr std::chrono::microseconds linger_poll_max{4000};
/// The RTT multiple lingering close waits, after the delivery, for input the client sent
/// before it saw our FIN (options::linger_quiet is the floor).
inline constexpr int linger_quiet_rtts = 4;

/// Accept errors that concern the process (EMFILE, ENFILE, ENOBUFS, ENOMEM) leave the
/// connection queued and the listener readable: retrying at once would spin. Back off
/// from the first to the second value, doubling, as Go's net/http does.
inline constexpr std::chrono::milliseconds accept_backoff_first{5};
inline constexpr std::chrono::milliseconds accept_backoff_max{1000};
/// Accept errors are logged at most once per this interval per loop.
inline constexpr std::chrono::seconds accept_error_log_interval{1};

/// At options::max_connections the accept loop checks again after this pause (clients
/// wait in the kernel backlog meanwhile): short enough to add little latency once a
/// connection closes, long enough not to spin.
inline constexpr std::chrono::milliseconds max_connections_pause{10};

/// Loops share one accept queue, and the one awake first would take a whole burst of new
/// connections (measured: all 64 of a wrk start on one of two loops, the other idle, in 1
/// run of 3; 45:15 in another). A loop holding more than its share of the server's
/// connections, by more than this many, pauses its accepting for accept_share_pause, so
/// that the other loops, woken by the same connections, take them. One pause per accept:
/// when the others do not (blocked in a handler), it accepts anyway after the pause.
inline constexpr std::size_t accept_share_slack = 2;
inline constexpr std::chrono::milliseconds accept_share_pause{1};

/// At shutdown each loop accepts at most this many queued connections per listener before
/// closing it (the kernel caps a backlog at net.core.somaxconn, 4096 by default): a bound on
/// the loop's time, far above any real queue.
inline constexpr std::size_t max_accepts_at_close = 65536;

/// adopt() waits this long for every loop to start accepting. A loop runs handlers, and a
/// sync handler that blocks delays it; 10 s covers any sane handler.
inline constexpr std::chrono::seconds adopt_wait{10};

} // namespace graceful::http::detail
