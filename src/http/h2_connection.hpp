#pragma once
// One HTTP/2 client connection (cleartext: prior knowledge or `Upgrade: h2c`), behind the
// same loop as HTTP/1.1: same router and handlers (dispatch.hpp), limits, stats and drain.
// The protocol is h2_session's; this class does the I/O and the clocks:
//   reader   reads, feeds the session, starts a handler coroutine per ready stream;
//   writer   sends what the session produces, and closes (lingering) once it is finished;
//   ticker   per-stream and per-connection timeouts, the shutdown PING cap, the linger cap.
// Each handler's context streams to its own stream (a stream_sink per stream): write_chunk
// queues DATA and waits while flow control holds stream_buffer_high bytes back.
//
// At shutdown (loop::begin_shutdown -> begin_shutdown()): GOAWAY notice + PING at once
// (idle or not); on the ACK, or after options::http2_ping_timeout, the final GOAWAY with the
// last processed stream id; streams up to it complete, later ones are refused; the
// connection closes with a lingering close (FIN, input discarded until the client closes or
// options::linger_timeout) once the final GOAWAY is out and its last stream ended.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>  // before awaitable.hpp (Boost 1.74 misses it)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <graceful/http/message.hpp>
#include <graceful/http/options.hpp>

#include "http/connection_base.hpp"
#include "http/h2_session.hpp"

namespace graceful::http::detail {

/// True when `data` (the first bytes of a connection) is the HTTP/2 preface or a prefix of it:
/// with `complete` false, more bytes are needed to tell.
bool looks_like_h2_preface(std::string_view data, bool& complete) noexcept;

/// True when `req` asks for `Upgrade: h2c` with an HTTP2-Settings header (RFC 7540 3.2);
/// `settings` gets the decoded payload.
bool wants_h2c_upgrade(const request& req, std::string& settings);

/// Starts an HTTP/2 connection on `l` with socket `s`. `initial` holds bytes already read
/// (the preface onwards). For an h2c upgrade, `upgraded` is the HTTP/1.1 request (answered
/// on stream 1) and `settings` its decoded HTTP2-Settings; the 101 must already be sent.
void start_h2_connection(loop& l, boost::asio::ip::tcp::socket s, std::string_view initial,
                         const request* upgraded = nullptr, std::string_view settings = {});

class h2_connection final : public connection_base,
                            public h2_session::observer,
                            public std::enable_shared_from_this<h2_connection> {
public:
  using clock_type = std::chrono::steady_clock;

  h2_connection(loop& l, boost::asio::ip::tcp::socket s);

  /// Feeds `initial`, opens the upgraded stream if any, then runs reader, writer and ticker.
  static void start(std::shared_ptr<h2_connection> self, std::string_view initial, const request* upgraded,
                    std::string_view settings);

  // connection_base
  void begin_shutdown() override;
  void force_close() override;
  void describe(std::string& out, clock_type::time_point now) const override;

  // h2_session::observer
  void on_stream_writable(h2_stream& st) override;

private:
  class sink;
  friend class sink;

  static boost::asio::awaitable<void> reader(std::shared_ptr<h2_connection> self);
  static boost::asio::awaitable<void> writer(std::shared_ptr<h2_connection> self);
  static boost::asio::awaitable<void> ticker(std::shared_ptr<h2_connection> self);
  static boost::asio::awaitable<void> handle(std::shared_ptr<h2_connection> self, h2_stream* st);

  void dispatch_ready();
  void kick() noexcept;        // wake the writer
  void retick() noexcept;      // wake the ticker (deadlines changed)
  void close_now() noexcept;
  void sync_counters() noexcept;
  void maybe_finish() noexcept;

  const options& opts_;
  boost::asio::ip::tcp::socket socket_;
  h2_session session_;
  boost::asio::steady_timer write_wake_;
  boost::asio::steady_timer tick_;
  std::unordered_map<std::int32_t, sink*> sinks_;  // streams whose handler runs
  std::string out_;
  // Here, not in reader()'s coroutine frame: with 16 KiB in the frame, GCC 12 under
  // -fsanitize=address reports Asio's frame allocation as a mismatched new/delete (a false
  // positive, but -Werror), and a small frame is what Asio's frame recycling caches.
  std::array<char, 16 * 1024> read_buf_{};
  h2_counters seen_{};  // counters already added to the loop's
  clock_type::time_point accepted_at_;
  clock_type::time_point ping_cap_at_ = clock_type::time_point::max();   // shutdown: final GOAWAY by then
  clock_type::time_point linger_until_ = clock_type::time_point::max();  // lingering close ends by then
  clock_type::time_point writing_since_ = clock_type::time_point::max(); // a write in progress since
  std::uint32_t handlers_ = 0;
  bool closed_ = false;        // socket closed
  bool lingering_ = false;     // write side shut, discarding input
  bool reader_done_ = false;
  bool writer_done_ = false;
  bool ticker_done_ = false;
  bool peer_eof_ = false;
  bool finished_ = false;
};

} // namespace graceful::http::detail
