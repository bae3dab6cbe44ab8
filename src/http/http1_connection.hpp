#pragma once
// One HTTP/1.1 client connection. Lives on its loop's thread; its coroutine serves requests
// one after another, each in four steps (read_header, read_body, handle, respond), and
// batches the responses to pipelined requests into one write.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>  // before awaitable.hpp (Boost 1.74 misses it)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <graceful/http/message.hpp>
#include <graceful/http/options.hpp>

#include "http/byte_buffer.hpp"
#include "http/connection_base.hpp"
#include "http/request_parser.hpp"

namespace graceful::http::detail {

class http1_connection final : public connection_base,
                               public stream_sink,
                               public std::enable_shared_from_this<http1_connection> {
public:
  using clock_type = std::chrono::steady_clock;

  http1_connection(loop& l, boost::asio::ip::tcp::socket s);

  /// The connection's coroutine: serves, then finishes (unregisters) whatever happened.
  static boost::asio::awaitable<void> run(std::shared_ptr<http1_connection> self);

  // connection_base
  void begin_shutdown() override;
  void force_close() override;
  void describe(std::string& out, clock_type::time_point now) const override;

  // stream_sink
  boost::asio::awaitable<bool> write_chunk(std::string_view data) override;
  boost::asio::awaitable<bool> sleep_or_stop(std::chrono::milliseconds d) override;
  boost::asio::awaitable<bool> before_async_handler() override;
  bool streaming() const noexcept override { return streaming_; }

private:
  enum class phase : std::uint8_t { idle, header, body, handling, lingering, done };
  const char* phase_name() const noexcept;

  // The request loop's steps; each returns false when the connection is done.
  boost::asio::awaitable<void> serve();
  boost::asio::awaitable<bool> read_header();
  boost::asio::awaitable<bool> read_body();
  boost::asio::awaitable<bool> handle();
  boost::asio::awaitable<bool> respond();

  // Deadlines: one timer per connection, re-armed lazily.
  void set_deadline(clock_type::time_point t);
  void arm_timer(clock_type::time_point t);
  void on_timer();
  std::chrono::milliseconds header_or_grace(std::chrono::milliseconds normal) const;
  /// now + `timeout`, but never past the shutdown's deadline once one began.
  clock_type::time_point bounded(std::chrono::milliseconds timeout) const;


  // I/O.
  boost::asio::awaitable<std::size_t> read_some();
  boost::asio::awaitable<bool> flush();
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

  const options& opts_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer sleep_timer_;
  byte_buffer in_;
  std::string out_;
  request_parser parser_;
  request req_;
  response res_;
  clock_type::time_point accepted_at_;
  clock_type::time_point deadline_ = clock_type::time_point::max();
  clock_type::time_point timer_at_{};
  /// When shutdown's grace for a connection without a request ends (max: not shutting down).
  clock_type::time_point grace_until_ = clock_type::time_point::max();
  std::uint64_t timer_gen_ = 0;
  std::uint64_t requests_ = 0;
  phase phase_ = phase::idle;
  bool timer_armed_ = false;
  bool timed_out_ = false;
  bool eof_ = false;
  bool closed_ = false;
  bool sleeping_ = false;
  bool streaming_ = false;
  bool chunked_ = false;
  bool stream_close_ = false;
  bool stream_failed_ = false;
  bool head_request_ = false;
  bool writing_ = false;
  /// Shutdown's grace began while this connection waited with zero bytes of a next request:
  /// a request that raced in as the grace ended may still be read (once, see read_header).
  bool grace_from_idle_ = false;
  bool rescued_ = false;
};

} // namespace graceful::http::detail
