#pragma once
// One HTTP/1.1 client connection. Lives on its loop's thread; while it has work its
// coroutine (serve) reads, handles and answers requests one after another, and batches
// the responses to pipelined requests into one write.
//
// An idle keep-alive connection (response written, nothing buffered, nothing arrived)
// holds no coroutine: the coroutine ends, the per-request state (parser, request,
// response, buffers, timers: http1_state) goes back to the loop, and what stays is this
// object (socket, counters, a link in the loop's idle list) and one readiness wait on the
// socket. When bytes arrive, a state is taken and the coroutine starts again; the loop's
// one idle timer (http1_idle) closes the connections whose idle time is up, in deadline
// order. That is what makes 10,000 idle connections cost a few MB (issue 13 item 3).
// A connection waits in its coroutine for the first tuning.hpp hot_idle_time of each idle
// period, so a busy keep-alive client (next request within a millisecond or so) does not
// pay for ending and starting a coroutine at every request.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>  // before awaitable.hpp (Boost 1.74 misses it)
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <graceful/http/message.hpp>
#include <graceful/http/options.hpp>

#include "http/byte_buffer.hpp"
#include "http/connection_base.hpp"
#include "http/request_parser.hpp"

namespace graceful::http::detail {

class http1_connection;

/// What an HTTP/1.1 connection needs only while it has a request to read, handle or answer.
/// Its loop keeps a few spare ones (http1_idle) for the next connection that wakes up.
struct http1_state {
  using clock_type = std::chrono::steady_clock;
  explicit http1_state(loop& l);

  /// The connection it serves now; null while spare. The deadline timer's wake-up goes to it.
  http1_connection* owner_ = nullptr;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer sleep_timer_;
  byte_buffer in_;
  std::string out_;
  request_parser parser_;
  request req_;
  response res_;
  clock_type::time_point deadline_ = clock_type::time_point::max();
  // The timer's own bookkeeping: it stays armed across owners (re-armed lazily, see
  // set_deadline), so these belong to the timer, not to a connection.
  clock_type::time_point timer_at_{};
  std::uint64_t timer_gen_ = 0;
  bool timer_armed_ = false;
  bool timed_out_ = false;
  bool eof_ = false;
  bool sleeping_ = false;
  bool streaming_ = false;
  bool chunked_ = false;
  bool stream_close_ = false;
  bool stream_failed_ = false;
  bool head_request_ = false;
  bool writing_ = false;
};

/// The idle HTTP/1.1 connections of one loop, two lists ordered by deadline (new
/// connections: header_read_timeout; keep-alive: idle_timeout; during shutdown, in the
/// order they came), one timer for all of them, and the loop's spare http1_states. An Asio service of the loop's io_context: it is
/// destroyed with the context, after every handler that could still reach it.
class http1_idle final : public boost::asio::execution_context::service {
public:
  using clock_type = std::chrono::steady_clock;
  static boost::asio::execution_context::id id;

  explicit http1_idle(boost::asio::io_context& ctx);
  ~http1_idle() override;

  /// The one for `l` (created on first use).
  static http1_idle& of(loop& l);

  /// Adds `c` to its list, in deadline order (c.idle_deadline_): parked (fresh or
  /// keep-alive, by c's requests), or `hot` (waiting in its coroutine: cooled down then).
  void link(http1_connection& c, bool hot);
  /// Takes `c` out of its list, if it is in one.
  void unlink(http1_connection& c) noexcept;
  /// `c`'s deadline became earlier (shutdown's grace): re-arms the timer if need be.
  void lowered(http1_connection& c);

  /// Memory for a parked connection's wait operation: exactly its size (Asio's per-thread
  /// recycled block would be the larger one of the accept that just completed, kept for as
  /// long as the connection idles), from a free list (no malloc per keep-alive request).
  void* op_allocate(std::size_t n);
  void op_deallocate(void* p, std::size_t n) noexcept;

  /// A state for `owner` (a spare one when there is one).
  std::shared_ptr<http1_state> take(loop& l, http1_connection& owner);
  /// `s` is no longer used by its owner: kept as a spare, or freed.
  void give_back(std::shared_ptr<http1_state> s) noexcept;

private:
  struct list {
    http1_connection* head = nullptr;
    http1_connection* tail = nullptr;
  };
  list& list_of(const http1_connection& c) noexcept;
  void insert(list& l, http1_connection& c) noexcept;
  void remove(list& l, http1_connection& c) noexcept;
  void arm(clock_type::time_point t);
  void on_timer();
  void shutdown() override;

  loop* loop_ = nullptr;
  list hot_;         // idle in their coroutine, until hot_idle_time passes
  list fresh_;       // no request yet: header_read_timeout
  list keep_alive_;  // served one or more: idle_timeout
  boost::asio::steady_timer timer_;
  clock_type::time_point timer_at_ = clock_type::time_point::max();  // max: not armed
  std::vector<std::shared_ptr<http1_state>> spare_;
  std::vector<void*> free_ops_;
  std::size_t op_size_ = 0;  // the size free_ops_ hold (one handler type: one size)
};

class http1_connection final : public connection_base, public stream_sink {
public:
  using clock_type = std::chrono::steady_clock;

  http1_connection(loop& l, boost::asio::ip::tcp::socket s);
  ~http1_connection() override;

  /// Serves a new connection: at once when bytes are waiting, else once some arrive.
  static void start(std::shared_ptr<http1_connection> self);

  // connection_base
  void begin_shutdown() override;
  void force_close() override;
  void describe(std::string& out, clock_type::time_point now) const override;

  // stream_sink
  boost::asio::awaitable<bool> write_chunk(std::string_view data) override;
  boost::asio::awaitable<bool> sleep_or_stop(std::chrono::milliseconds d) override;
  boost::asio::awaitable<bool> before_async_handler() override;
  bool streaming() const noexcept override { return st_->streaming_; }

private:
  friend class http1_idle;
  struct wake_handler;
  enum class phase : std::uint8_t { idle, header, body, handling, lingering, done };
  const char* phase_name() const noexcept;

  /// The coroutine: serves until the connection is done (then finishes it) or idle (parks).
  static boost::asio::awaitable<void> run(std::shared_ptr<http1_connection> self);
  /// The coroutine of an idle connection whose time is up: lingering close, finish.
  static boost::asio::awaitable<void> run_linger(std::shared_ptr<http1_connection> self);

  // Idle without a coroutine.
  // `self` is this connection: whoever runs next (the wait's handler, the coroutine)
  // holds it, passed along rather than copied (no reference count traffic per request).
  /// Waits for readability with no coroutine and no state (idle_deadline_ set).
  void park(std::shared_ptr<http1_connection> self);
  /// The readiness wait of a parked connection.
  void wait_readable(std::shared_ptr<http1_connection> self);
  /// The readiness wait ended (readable, or cancelled: closed or time up).
  void on_wake(const boost::system::error_code& ec, std::shared_ptr<http1_connection> self);
  /// The loop's idle timer says idle_deadline_ passed.
  void idle_expired();
  /// The loop's idle timer says this connection waited hot_idle_time in its coroutine.
  void cool_down();
  /// What read_on_wake found.
  enum class wake_read : std::uint8_t { got, nothing, closed, failed };
  /// A new or parked connection reads what has arrived into a state taken for it (given
  /// back again when nothing had: `nothing`).
  wake_read read_on_wake();
  /// Takes a state (unless it has one) and starts run(), or run_linger() when `linger`.
  void activate(bool linger, std::shared_ptr<http1_connection> self);
  /// Gives the state back (idle or done).
  void release_state() noexcept;
  /// Unregisters a connection that ends while parked.
  void finish_parked();
  /// The set-up of a wait for the next request (phase, the grace's flag); its deadline,
  /// counted from `now` (the caller's clock read).
  clock_type::time_point next_request_wait(bool have_bytes, clock_type::time_point now);

  // The request loop's steps (serve); each returns false when the connection is done or parks.
  boost::asio::awaitable<void> serve();
  boost::asio::awaitable<bool> read_header();
  boost::asio::awaitable<bool> read_body();
  /// `Upgrade: h2c`: the 101, then the connection goes to HTTP/2.
  boost::asio::awaitable<void> upgrade_to_h2c(std::string_view settings);
  /// Writes the response (or a stream's last chunk) into out_ and counts it; false: the
  /// connection ends (its stream failed). `close`: this response is the connection's last.
  bool finish_response(bool& close);
  /// Sends the last response, then closes (lingering, unless the client asked for the close).
  boost::asio::awaitable<void> close_after_response();

  // Deadlines: one timer per state, re-armed lazily.
  void set_deadline(clock_type::time_point t);
  void arm_timer(clock_type::time_point t);
  void on_timer();
  std::chrono::milliseconds header_or_grace(std::chrono::milliseconds normal) const;
  /// now + `timeout`, but never past the shutdown's deadline once one began.
  clock_type::time_point bounded(std::chrono::milliseconds timeout) const;

  // I/O.
  boost::asio::awaitable<std::size_t> read_some();
  /// Sends out_ (`last`: the connection closes right after): send_now, then write_rest.
  boost::asio::awaitable<bool> flush(bool last = false);
  /// Sends what the kernel takes at once; false: the peer is gone (out_ dropped).
  bool send_now(bool last);
  /// Sends what is left of out_ through the reactor, within the write timeout.
  boost::asio::awaitable<bool> write_rest();
  bool bytes_waiting();
  boost::asio::awaitable<void> linger_close();
  void close_now();
  /// Gives back out_'s memory (idle: nothing to send).
  void release_output();
  /// Gives the socket to an HTTP/2 connection (prior knowledge, or after a 101 for h2c).
  void hand_over_to_h2(const request* upgraded, std::string_view settings);

  // Responses.
  void reset_response();
  void write_response(bool close);
  boost::asio::awaitable<void> reply_error();
  boost::asio::awaitable<void> reply_and_close(int status, std::string_view reason);

  // What a connection keeps while idle: kept small (issue 13 item 3), the rest is st_.
  const options& opts_;
  boost::asio::ip::tcp::socket socket_;
  /// Non-null while the coroutine runs (or a parked wake-up reads into it).
  std::shared_ptr<http1_state> st_;
  // http1_idle's list links and the deadline it orders by (while parked).
  http1_connection* idle_prev_ = nullptr;
  http1_connection* idle_next_ = nullptr;
  clock_type::time_point idle_deadline_ = clock_type::time_point::max();
  clock_type::time_point accepted_at_;
  /// When shutdown's grace for a connection without a request ends (max: not shutting down).
  clock_type::time_point grace_until_ = clock_type::time_point::max();
  std::uint64_t requests_ = 0;
  phase phase_ = phase::idle;
  bool closed_ = false;
  /// Waiting idle with no coroutine (see park()); linked_ while in an idle list (hot_: the
  /// list of those waiting in their coroutine).
  bool parked_ = false;
  bool linked_ = false;
  bool hot_ = false;
  /// cool_down() ended the coroutine's idle wait: park.
  bool cooled_ = false;
  /// The idle timer ended a parked connection's wait (its readiness wait is being cancelled).
  bool expired_ = false;
  /// The coroutine stopped to park (serve() returned without the connection being done).
  bool parking_ = false;
  /// The next read_header() continues a parked connection's wait (nothing to set up again).
  bool resumed_ = false;
  /// read_header's last read took all the socket had (fewer bytes than it asked for), and
  /// the coroutine has not been suspended since: nothing can have arrived unseen, so the
  /// next wait needs no look first (drained_wait.hpp). Cleared before every step that may
  /// suspend.
  bool drained_ = false;
  /// Shutdown's grace began while this connection waited with zero bytes of a next request:
  /// a request that raced in as the grace ended may still be read (once, see read_header).
  bool grace_from_idle_ = false;
  bool rescued_ = false;
};

} // namespace graceful::http::detail
