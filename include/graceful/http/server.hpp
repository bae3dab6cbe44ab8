#pragma once
/// \file
/// The HTTP/1.1 server: event loops, listeners, connections, and its two stop verbs:
/// shutdown(deadline) drains like Go's Server.Shutdown but loses no keep-alive request;
/// close() cuts everything now.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <graceful/core/deadline.hpp>
#include <graceful/core/errc.hpp>
#include <graceful/core/result.hpp>
#include <graceful/http/errc.hpp>
#include <graceful/http/options.hpp>
#include <graceful/http/router.hpp>

namespace spdlog { class logger; }

namespace graceful::http {

namespace detail { struct server_state; }

/// Counters of a server, summed over its event loops at the moment of the call.
struct server_stats {
  std::uint64_t open_connections = 0;     ///< connections open now (lingering ones included)
  std::uint64_t accepted_connections = 0; ///< connections accepted since start
  std::uint64_t in_flight_requests = 0;   ///< requests whose header arrived and whose response is not done
  /// Responses sent, by status code, only codes with a non-zero count, in ascending order.
  std::vector<std::pair<int, std::uint64_t>> responses_by_status;
  bool shutting_down = false;             ///< shutdown() or close() began
  /// Requests cut: in flight when close() ran (after a shutdown deadline, or a plain
  /// close()), or whose body upload or response write was still going at shutdown()'s
  /// deadline. Each one's client got no complete response.
  std::uint64_t cut_requests = 0;
  /// Connections cut: still open when close() ran, or cut at shutdown()'s deadline as above.
  std::uint64_t cut_connections = 0;
  /// How long the last completed shutdown() took (zero before one completed).
  std::chrono::nanoseconds last_shutdown_duration{0};
  // HTTP/2 (its responses are counted in responses_by_status too).
  std::uint64_t http2_connections = 0;      ///< HTTP/2 connections accepted (prior knowledge or h2c)
  std::uint64_t http2_streams = 0;          ///< request streams opened by clients
  /// HTTP/2 streams answered, by status code (non-zero counts, ascending).
  std::vector<std::pair<int, std::uint64_t>> http2_streams_by_status;
  std::uint64_t http2_streams_refused = 0;  ///< RST_STREAM(REFUSED_STREAM) after the final GOAWAY
  std::uint64_t http2_streams_reset = 0;    ///< streams the client reset (RST_STREAM received)
  std::uint64_t http2_goaways_sent = 0;     ///< GOAWAY frames sent (shutdown notices, final, errors)
};

/// An HTTP/1.1 server on Boost.Asio. Thread-safe: every member may be called from any thread.
///
/// Shutdown, in order (each step is one sentence of the contract):
///  1. Listeners close at once, after the connections already queued in the kernel are
///     accepted (and served with `Connection: close`): later ones are refused by the kernel
///     (or, with a handed-over socket, accepted by whoever still holds it).
///     stop_accepting() closes them without taking the queue (for a hand-over).
///  2. Requests in flight run to completion; their responses carry `Connection: close`;
///     handlers see their request's stop_token requested.
///  3. A connection without a complete request (idle keep-alive or new) gets
///     options::shutdown_idle_grace to send one; a request that arrives is answered with
///     `Connection: close`. Bytes already received count as arrived (no golang/go#65802 race).
///  4. Every close is a lingering close: FIN first, then input is discarded for a bounded
///     time, so a client that was answered never sees a RST. It ends once the kernel reports
///     the whole response acknowledged and no input has come for options::linger_quiet.
///  5. A request body still being uploaded, or a response still being written, at the
///     deadline is cut then (a 408 for the upload), not at body_read_timeout/write_timeout.
///     A request that raced in as a grace ended is read for one more grace at most, once,
///     and only on a connection that had sent nothing when its grace began.
///  6. shutdown() returns the moment the last connection is gone, or errc::shutdown_timeout
///     at the deadline; close() then cuts what is left.
class server {
public:
  /// Starts options.threads event loops. Throws std::invalid_argument with validate()'s
  /// message (naming the field) on bad options.
  explicit server(http::router routes, options opts = {});
  /// close(), then stops and joins the event loops.
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// The routes; may be changed only before the first listener is added (std::logic_error after).
  http::router& routes();

  /// Starts accepting on `listen_fd`, a listening TCP socket, and returns at once. The server
  /// owns the fd from then on (even on error): pass a dup() to keep one. Errors:
  /// errc::server_closed after shutdown/close began, errc::not_a_listener.
  result<void> adopt(int listen_fd);
  /// adopt(), waiting at most until `d` for every event loop to take the socket (a loop runs
  /// handlers; a sync handler that blocks delays it). At `d` it returns std::errc::timed_out
  /// and the socket is never served: a loop that gets to it later closes its copy.
  result<void> adopt(int listen_fd, graceful::deadline d);
  /// Creates a listening socket on `address` ("127.0.0.1:8080", "[::1]:0", ":8080", "*:8080",
  /// "localhost:8080" = 127.0.0.1; the grammar of graceful/core/address.hpp) and adopts it.
  /// Returns the bound port (useful with port 0). A malformed address is a graceful::errc
  /// address_* value; a UNIX socket address is errc::bad_address (the server speaks TCP).
  result<std::uint16_t> listen(std::string_view address);

  /// Go's Serve: adopt(listen_fd), then block until shutdown() or close() begins. Always
  /// returns an error: errc::server_closed after a stop, or why adopting failed.
  result<void> serve(int listen_fd);
  /// Go's ListenAndServe: listen(address), then block like serve().
  result<void> listen_and_serve(std::string_view address);

  /// Closes every listener now and returns once each event loop has (std::errc::timed_out
  /// at `d` when a loop blocked in a handler has not yet; it closes them when it returns).
  /// Connections already accepted go on being served; later adopt()/listen() calls are
  /// refused (errc::server_closed). For the moment an upgrade's new process is ready: it
  /// holds the same sockets and accepts what is queued on them. Unlike shutdown(), it does
  /// not take the connections queued in the kernel (the new process does).
  result<void> stop_accepting(graceful::deadline d);

  /// Drains (see the class comment) and returns once no connection is left, or
  /// errc::shutdown_timeout when `d` passes first. Calling it again waits again.
  result<void> shutdown(graceful::deadline d);
  /// Closes listeners and every connection now (Go's Close). Returns once every event loop
  /// has done so, or at `d` if a loop is blocked by a handler (it closes its connections
  /// when the handler returns). Handlers still running finish on their own; their writes fail.
  void close(graceful::deadline d);
  /// close(deadline::after(default_close_wait)).
  void close();
  /// How long close() waits for a loop blocked in a handler: 1 s, long for a handler that
  /// must not block, short enough for a destructor.
  static constexpr std::chrono::milliseconds default_close_wait{1000};

  /// Counters for metrics.
  server_stats stats() const;
  /// One line per open connection (peer, state, age) and per in-flight request (method,
  /// path, age), for the SIGUSR1 dump. Waits for each loop at most until `d`; a loop too busy
  /// to answer is named as such.
  std::string describe(graceful::deadline d) const;

  /// The logger from options (spdlog's default logger when none was given).
  spdlog::logger& logger() const noexcept;

private:
  std::shared_ptr<detail::server_state> impl_;
};

/// Makes a listening TCP socket (graceful::open_listen_socket: SO_REUSEADDR, close-on-exec)
/// on `address`, as server::listen does. Returns the fd, owned by the caller.
result<int> open_listener(std::string_view address, int backlog = 4096);
/// The local port a socket is bound to.
result<std::uint16_t> local_port(int fd);

} // namespace graceful::http
