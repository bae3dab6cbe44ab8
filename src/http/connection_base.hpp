#pragma once
// How a protocol plugs into the server.
//
// A loop (loop.hpp) owns listeners and a list of connections; it knows them only as
// connection_base. To add a protocol (HTTP/2 next to HTTP/1.1):
//  1. Derive a connection class from connection_base. Construct it on the loop's thread
//     with the accepted socket: the base constructor registers it (loop list, open and
//     live counts, max_connections), so limits, drain and stats cover it.
//  2. Implement begin_shutdown() (stop taking new requests: idle gets the grace, handlers
//     see stop requested through the loop's stop_token), force_close() (cut now, for
//     close()) and describe() (one line per connection for the SIGUSR1 dump). The loop
//     calls them on its thread.
//  3. Call begin_request()/end_request() around each request (in_flight counts, one
//     connection may have many at once), and finish() exactly once when the connection is
//     done (it unregisters; the object may be destroyed right after).
//  4. Run each request through dispatch() (dispatch.hpp): route lookup, 404/405, sync and
//     coroutine handlers, exceptions -> 500. It needs a stream_sink: the object a handler's
//     context::write_chunk / sleep_or_stop talk to (one per HTTP/1.1 connection; one per
//     stream for HTTP/2). Count each response sent with loop::count_status().
//  5. Choose the protocol in start_connection() (loop.cpp), e.g. by sniffing the HTTP/2
//     connection preface, or hand the socket and the bytes read so far to the new type.
// Request and response internals are reached through message_access.hpp.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>

namespace graceful::http::detail {

struct loop;

/// What a handler's context streams to: one HTTP/1.1 connection, or one HTTP/2 stream.
class stream_sink {
public:
  /// context::write_chunk: the first call sends the head from the response, then `data`.
  virtual boost::asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  /// context::sleep_or_stop: waits `d`, false early once shutdown (or close) begins.
  virtual boost::asio::awaitable<bool> sleep_or_stop(std::chrono::milliseconds d) = 0;
  /// Called by dispatch() before a coroutine handler starts (it may run for long): send
  /// what is buffered, lift read deadlines. False: the peer is gone, do not run it.
  virtual boost::asio::awaitable<bool> before_async_handler() = 0;
  /// True once write_chunk sent the head: a failure can no longer become a 500.
  virtual bool streaming() const noexcept = 0;

protected:
  ~stream_sink() = default;
};

/// A client connection as its loop sees it. Lives on the loop's thread only.
class connection_base {
public:
  connection_base(const connection_base&) = delete;
  connection_base& operator=(const connection_base&) = delete;

  /// Shutdown began: take no new request; connections without one get the grace.
  virtual void begin_shutdown() = 0;
  /// close(): cut now.
  virtual void force_close() = 0;
  /// Appends one line ("  conn PEER state=... age=...") and one per in-flight request.
  virtual void describe(std::string& out, std::chrono::steady_clock::time_point now) const = 0;

protected:
  /// Registers with `l` (its list, open and live counts): call on the loop's thread.
  explicit connection_base(loop& l);
  /// Unregisters if finish() did not run (it must have: this is a safety net).
  virtual ~connection_base();

  /// A request header arrived / its response is done (in_flight_requests).
  void begin_request() noexcept;
  void end_request() noexcept;
  /// Requests of this connection between begin_request and end_request.
  std::uint32_t requests_in_flight() const noexcept { return in_flight_; }
  /// Unregisters from the loop: counters, list, and shutdown's count. Idempotent.
  void finish() noexcept;
  /// This connection lost a request at the shutdown deadline (e.g. a body upload or a
  /// response write still going): counted once in server_stats::cut_requests and
  /// cut_connections; close() then does not count it again.
  void count_cut() noexcept;

  loop& loop_;

private:
  friend struct loop;
  std::size_t index_ = 0;  // position in loop::conns
  std::uint32_t in_flight_ = 0;
  bool registered_ = false;
  bool cut_counted_ = false;
};

} // namespace graceful::http::detail
