#pragma once
// The server side of one HTTP/2 connection as a pure state machine over libnghttp2: bytes in
// (feed), bytes out (produce), a stream table whose entries are graceful's request/response
// objects, response submission (whole bodies and streamed DATA under flow control), the
// two-phase GOAWAY, and abuse limits. No sockets, no timers, no threads: the connection that
// owns it does the I/O and calls expire() from its timer, so this is unit-tested against
// nghttp2's own client session in memory (tests/unit/http/h2_session_test.cpp).
// Implementation by concept: h2_session.cpp (construction, stream table, I/O),
// h2_session_callbacks.cpp (what nghttp2 reports), h2_session_response.cpp (responses out),
// h2_session_limits.cpp (shutdown phases, timeouts, abuse).
//
// Two-phase shutdown (RFC 9113 6.8, as nghttpx, h2o and Envoy do it):
//   begin_shutdown()  GOAWAY(last_stream_id = 2^31-1, NO_ERROR) + PING: "stop opening streams
//                     soon"; streams the client opens meanwhile are still served.
//   PING ACK          (or the owner's cap, e.g. 1 s: final_goaway()) the client has seen the
//                     notice, so every stream it opened before it has arrived:
//                     GOAWAY(last_stream_id = nghttp2_session_get_last_proc_stream_id).
//                     Streams up to that id complete; a stream above it that still arrives
//                     while some stream runs is answered RST_STREAM(REFUSED_STREAM) (safe to
//                     retry: never processed).
//   last stream ends  finished() is true once the final GOAWAY is out and no stream is left;
//                     the owner does a lingering close (FIN after the GOAWAY, input drained),
//                     so the client reads the GOAWAY, whose last id tells it which of its
//                     streams were not processed.
// No second PING round trip: with no active stream after its final GOAWAY, nghttp2 reads no
// more input (nghttp2_session_mem_recv discards it once want_read is 0), so an ACK would never
// be seen, and nothing needs one: the lingering close already keeps our frames from being
// destroyed by a RST. An idle connection goes through the same phases at once: one round
// trip (or the cap), no grace guess.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <graceful/http/message.hpp>

struct nghttp2_session;
namespace spdlog { class logger; }

namespace graceful::http::detail {

using h2_clock = std::chrono::steady_clock;

/// Limits of one HTTP/2 connection, each default written and explained.
struct h2_settings {
  /// SETTINGS_MAX_CONCURRENT_STREAMS. Default 100 (RFC 9113 5.1.2 recommends >= 100).
  std::uint32_t max_concurrent_streams = 100;
  /// SETTINGS_INITIAL_WINDOW_SIZE, the receive window of each stream. Default 1 MiB: a 1 MiB
  /// upload needs no WINDOW_UPDATE round trip; bounded by max_body_bytes anyway.
  std::uint32_t stream_window = 1u << 20;
  /// Receive window of the whole connection. Default 16 MiB (16 streams at full speed).
  std::uint32_t connection_window = 16u << 20;
  /// SETTINGS_MAX_HEADER_LIST_SIZE, enforced: a larger request header gets 431. Default
  /// 32 KiB, the same as options::max_header_bytes for HTTP/1.1.
  std::size_t max_header_list_size = 32 * 1024;
  /// Largest request body; more gets 413. Default 8 MiB (options::max_body_bytes).
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  /// Client RST_STREAMs allowed: a token bucket of `reset_burst` refilled at `reset_rate` per
  /// second; empty means HTTP/2 rapid reset (CVE-2023-44487): GOAWAY(ENHANCE_YOUR_CALM).
  /// Default 200 and 100/s: a browser cancelling a page's requests stays far below.
  std::uint32_t reset_burst = 200, reset_rate = 100;
  /// Client PINGs (not ACKs) allowed, as a token bucket. Default 50 and 10/s: keep-alive
  /// pings are one per several seconds.
  std::uint32_t ping_burst = 50, ping_rate = 10;
  /// Client SETTINGS frames allowed, as a token bucket. Default 50 and 10/s.
  std::uint32_t settings_burst = 50, settings_rate = 10;
  /// Response bytes buffered per stream before write_chunk waits (see write_blocked()).
  /// Default 64 KiB: one flow-control window of the default client.
  std::size_t stream_buffer_high = 64 * 1024;
  /// Value of the server response header; empty: none. Default "graceful".
  std::string server_name = "graceful";
  /// How this connection is named in log lines (the peer address).
  std::string peer = "?";
};

/// One stream: a request being received or handled and its response.
struct h2_stream {
  std::int32_t id = 0;
  http::request req;
  http::response res;
  h2_clock::time_point opened{}, progress{};  ///< when it opened / last moved a byte
  /// Non-zero: answer this status without calling a handler (413, 431, 408).
  int error_status = 0;
  /// The request's header block ended (END_HEADERS received and decoded). Until then the
  /// peer is mid-frame and no other frame of the connection can arrive.
  bool headers_done = false;
  bool request_complete = false;  ///< END_STREAM received (or answered early on error)
  bool queued = false;            ///< put on the ready list (once)
  bool dispatched = false;        ///< handed out by take_ready(); released by release()
  bool responded = false;         ///< response HEADERS submitted
  bool streaming = false;         ///< the body is DATA written piecewise
  bool body_done = false;         ///< no more body bytes will be written
  bool closed = false;            ///< nghttp2 closed the stream (sent, reset or refused)
  bool head = false;              ///< a HEAD request: no body bytes
  std::uint32_t close_code = 0;   ///< nghttp2 error code it closed with (0 = NO_ERROR)
  std::string out;                ///< response bytes not yet taken by nghttp2
  std::size_t out_off = 0;
  std::size_t header_bytes = 0;   ///< name+value+32 per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts
  std::vector<std::uint32_t> offs;  ///< name/value offsets into the request arena
  std::size_t buffered() const noexcept { return out.size() - out_off; }
};

/// Counters of one session (summed into server_stats by the owner).
struct h2_counters {
  std::uint64_t streams_opened = 0;    ///< request streams that began
  std::uint64_t streams_refused = 0;   ///< RST_STREAM(REFUSED_STREAM) frames sent
  std::uint64_t streams_reset = 0;     ///< streams the client reset
  std::uint64_t goaways_sent = 0;      ///< GOAWAY frames sent (notice, final, errors)
};

/// Server side of one HTTP/2 connection. Single-threaded: all calls from the owner's thread.
class h2_session {
public:
  enum class phase : std::uint8_t {
    open,         ///< serving
    notice_sent,  ///< shutdown notice and PING queued; waiting for the PING ACK
    goaway_sent,  ///< final GOAWAY queued (last id fixed); streams above it are refused
  };

  /// What the owner hears while feed()/produce() run (both called from inside nghttp2).
  struct observer {
    virtual ~observer() = default;
    /// A dispatched stream's buffer went below half of stream_buffer_high, or it closed.
    virtual void on_stream_writable(h2_stream&) {}
  };

  explicit h2_session(h2_settings s, observer* obs = nullptr);
  ~h2_session();
  h2_session(const h2_session&) = delete;
  h2_session& operator=(const h2_session&) = delete;

  /// Warnings (floods, rapid reset, cut connections) go here; default: spdlog's default logger.
  void set_logger(spdlog::logger* l) noexcept { log_ = l; }
  /// Requests are given this stop token (requested when the server shuts down).
  void set_stop_token(const std::stop_token* t) noexcept { stop_ = t; }

  /// h2c upgrade (RFC 7540 3.2): `settings` is the base64url-decoded HTTP2-Settings header.
  /// Opens stream 1 for the HTTP/1.1 request that asked for the upgrade and returns it (the
  /// caller copies that request in with copy_request() and dispatches it), or null when the
  /// settings are malformed. Call before the first feed().
  h2_stream* upgrade(std::string_view settings, bool head_request);
  /// Copies an already parsed request into `st` (for the upgraded stream 1).
  static void copy_request(h2_stream& st, const http::request& from);

  /// Hands received bytes to nghttp2. False: a connection error (bad preface, protocol error,
  /// flood); frames saying so (GOAWAY) may still be produced, then the connection closes.
  bool feed(const char* p, std::size_t n);
  /// Appends frames ready to send to `out` (at most about `max` bytes). Returns false on a
  /// fatal library error.
  bool produce(std::string& out, std::size_t max = 256 * 1024);
  /// True while nghttp2 has frames to send (produce() would append something).
  bool want_write() const noexcept;

  /// Streams whose request is complete (or that must get an error status), in arrival
  /// order, each once. They stay in the table until release().
  std::vector<h2_stream*> take_ready();
  /// The stream with this id, if it is in the table.
  h2_stream* find(std::int32_t id) noexcept;

  /// Submits `st.res` (status, headers, body) as the whole response. `date` is the Date value.
  bool respond(h2_stream& st, std::string_view date);
  /// Submits the response headers; the body follows with write() and end().
  bool start_streaming(h2_stream& st, std::string_view date);
  /// Queues body bytes of a streamed response. False once the stream is closed.
  bool write(h2_stream& st, std::string_view data);
  /// No more body bytes: END_STREAM follows the last buffered byte.
  void end(h2_stream& st);
  /// True while the stream holds stream_buffer_high bytes or more (flow control is holding
  /// them back): the writer should wait for observer::on_stream_writable.
  bool write_blocked(const h2_stream& st) const noexcept;
  /// Resets a stream (e.g. a handler threw mid-stream).
  void reset(h2_stream& st, std::uint32_t code);
  /// The owner is done with a dispatched stream (its handler returned). A closed stream is
  /// removed from the table; an open one stays until nghttp2 closes it.
  void release(h2_stream& st);

  /// Phase 1 of shutdown (see the file comment). Idempotent.
  void begin_shutdown();
  /// Phase 2: the final GOAWAY with the last processed stream id. Called on the PING ACK, or
  /// by the owner when the ACK did not come in time. Idempotent.
  void final_goaway();
  /// Tears the connection down now: GOAWAY(code) and a warning naming `reason`.
  void terminate(std::uint32_t code, std::string_view reason);
  /// The connection may close (lingering): the final GOAWAY went out, no stream is left,
  /// and nothing is left to send. Also true after a connection error, or when the client
  /// sent GOAWAY and no stream is left.
  bool finished() const noexcept;

  /// Per-stream and header-block timeouts at `now`: a request body slower than `body` gets
  /// 408; a stream whose response made no progress for `write` (a client that stopped
  /// granting window) is reset; a header block left open for `header` (no END_HEADERS, or
  /// a HEADERS frame whose payload stopped arriving) tears the connection down (GOAWAY). Returns the earliest time something can next expire (max() if none).
  h2_clock::time_point expire(h2_clock::time_point now, std::chrono::milliseconds header,
                              std::chrono::milliseconds body, std::chrono::milliseconds write);

  phase current_phase() const noexcept { return phase_; }
  /// Streams in the table (open, or held by a running handler).
  std::size_t streams() const noexcept { return streams_.size(); }
  /// Streams still open in nghttp2 (neither completed nor reset).
  std::size_t open_streams() const noexcept;
  /// The id the final GOAWAY carried (-1 before it).
  std::int32_t last_stream_id() const noexcept { return final_id_; }
  /// The PING after the shutdown notice was acknowledged.
  bool notice_acked() const noexcept { return ping1_acked_; }
  /// Why the session failed or was terminated ("" if it did not).
  const std::string& error() const noexcept { return error_; }
  const h2_counters& counters() const noexcept { return counters_; }
  /// Last time a frame arrived or a stream made progress (for the connection's idle timeout).
  h2_clock::time_point last_activity() const noexcept { return activity_; }

  struct callbacks;  ///< nghttp2 callback trampolines (h2_session_callbacks.hpp)

private:
  friend struct callbacks;
  struct bucket {
    double tokens = 0, burst = 0, rate = 0;
    h2_clock::time_point at{};
    bool take(h2_clock::time_point now);
  };

  h2_stream& open_stream(std::int32_t id);
  void finish_headers(h2_stream& st);
  void make_ready(h2_stream& st);
  void erase(std::int32_t id);
  bool submit(h2_stream& st, std::string_view date, bool with_provider, std::size_t length);
  void refuse_pending();
  spdlog::logger& log() const noexcept;

  h2_settings s_;
  observer* obs_;
  spdlog::logger* log_ = nullptr;
  nghttp2_session* ng_ = nullptr;
  std::map<std::int32_t, std::unique_ptr<h2_stream>> streams_;
  std::vector<std::int32_t> ready_;
  const std::stop_token* stop_ = nullptr;
  phase phase_ = phase::open;
  std::int32_t final_id_ = -1;
  std::int32_t max_seen_id_ = 0;  // highest client stream id whose HEADERS began
  bool ping1_sent_ = false, ping1_acked_ = false;
  // Streams above the final GOAWAY's id whose HEADERS arrived in the current feed(): refused
  // once nghttp2 has seen them (it drops a RST_STREAM for an id it has not received yet).
  std::vector<std::int32_t> refuse_;
  bool failed_ = false;
  bool peer_goaway_ = false;
  bool terminated_ = false;
  // A HEADERS frame without END_HEADERS began (CONTINUATION expected) at this time.
  bool in_header_block_ = false;
  h2_clock::time_point header_block_since_{};
  h2_clock::time_point activity_ = h2_clock::now();
  bucket resets_, pings_, settings_frames_;
  h2_counters counters_;
  std::string error_;
};

/// The 24-byte HTTP/2 client connection preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").
std::string_view h2_preface() noexcept;
/// Decodes base64url (RFC 4648 5, padding optional) as used by HTTP2-Settings; false if bad.
bool base64url_decode(std::string_view in, std::string& out);

} // namespace graceful::http::detail
