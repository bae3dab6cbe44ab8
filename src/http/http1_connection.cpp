#include "http/http1_connection.hpp"

#include <algorithm>
#include <cerrno>

#include <sys/socket.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/dispatch.hpp"
#include "http/h2_connection.hpp"
#include "http/loop.hpp"
#include "http/message_access.hpp"
#include "http/response_writer.hpp"
#include "http/tcp_state.hpp"
#include "http/tuning.hpp"

namespace graceful::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = http1_connection::clock_type;

http1_connection::http1_connection(loop& l, tcp::socket s)
    : connection_base(l), opts_(l.srv.opts), socket_(std::move(s)), timer_(*l.ctx), sleep_timer_(*l.ctx),
      parser_(parse_limits{l.srv.opts.max_header_bytes, l.srv.opts.max_body_bytes}),
      accepted_at_(clock_type::now()) {}

asio::awaitable<void> http1_connection::run(std::shared_ptr<http1_connection> self) {
  try {
    co_await self->serve();
  } catch (const std::exception& e) {
    self->loop_.srv.log().error("http: connection failed: {}", e.what());
  } catch (...) {
    // Whatever escaped, the bookkeeping below must run: a connection left in the loop's
    // list would be used after free at close, and shutdown would wait for it forever.
    self->loop_.srv.log().error("http: connection failed: non-std::exception");
  }
  self->close_now();
  self->finish();
}

// ---- what the loop calls ----

void http1_connection::begin_shutdown() {
  // A connection without a complete request gets the grace; handlers sleeping in
  // sleep_or_stop wake up.
  if (phase_ == phase::idle || phase_ == phase::header) {
    auto g = clock_type::now() + opts_.shutdown_idle_grace;
    grace_until_ = g;
    grace_from_idle_ = phase_ == phase::idle && in_.empty();
    if (g < deadline_) set_deadline(g);
  } else if (phase_ == phase::body || writing_) {
    // A slow upload or a slow reader ends by the shutdown's deadline, not by its own
    // (60 s body, 30 s write) timeout.
    if (loop_.shutdown_deadline < deadline_) set_deadline(loop_.shutdown_deadline);
  }
  if (sleeping_) sleep_timer_.cancel();
}

void http1_connection::force_close() {
  closed_ = true;
  error_code ec;
  socket_.close(ec);
  timer_.cancel();
  sleep_timer_.cancel();
}

const char* http1_connection::phase_name() const noexcept {
  switch (phase_) {
    case phase::idle: return requests_ ? "idle" : "new";
    case phase::header: return "reading-header";
    case phase::body: return "reading-body";
    case phase::handling: return "handling";
    case phase::lingering: return "lingering-close";
    case phase::done: return "closed";
  }
  return "?";
}

void http1_connection::describe(std::string& out, clock_type::time_point now) const {
  using std::chrono::duration_cast;
  using ms = std::chrono::milliseconds;
  error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  out += "  conn ";
  out += ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  out += " state=";
  out += phase_name();
  out += " age=" + std::to_string(duration_cast<ms>(now - accepted_at_).count()) + "ms";
  out += " requests=" + std::to_string(requests_);
  if (requests_in_flight()) {
    out += " request=\"";
    out += req_.method();
    out += ' ';
    out += req_.path().substr(0, 200);
    out += "\" request_age=" + std::to_string(duration_cast<ms>(now - req_.received()).count()) + "ms";
  }
  out += '\n';
}

// ---- what a handler's context calls ----

asio::awaitable<bool> http1_connection::write_chunk(std::string_view data) {
  if (closed_ || stream_failed_) co_return false;
  response_writer w(out_, opts_.server_name);
  if (!streaming_) {
    streaming_ = true;
    chunked_ = message_access::version(req_) == 11;
    // An HTTP/1.0 client has no chunked coding: the end of the body is our close.
    stream_close_ = !chunked_ || !message_access::keep_alive(req_) || loop_.draining || wants_close(res_);
    head_framing f;
    f.chunked = chunked_;
    f.no_length = true;
    f.close = stream_close_;
    f.http10 = message_access::version(req_) == 10;
    w.head(res_, loop_.date(), f);
  }
  if (!data.empty() && !head_request_) {
    if (chunked_) w.chunk(data);
    else out_.append(data);
  }
  auto saved = deadline_;
  bool ok = co_await flush();
  set_deadline(saved);
  if (!ok) stream_failed_ = true;
  co_return ok;
}

asio::awaitable<bool> http1_connection::sleep_or_stop(std::chrono::milliseconds d) {
  if (loop_.draining || closed_) co_return false;
  sleep_timer_.expires_after(d);
  sleeping_ = true;
  error_code ec;
  co_await sleep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  sleeping_ = false;
  co_return !ec && !loop_.draining && !closed_;
}

asio::awaitable<bool> http1_connection::before_async_handler() {
  // Responses to earlier pipelined requests go out first: this handler may take long.
  if (!out_.empty()) {
    bool sent = co_await flush();
    if (!sent) co_return false;
  }
  // A handler's own time is not bounded by a read or write timeout.
  set_deadline(clock_type::time_point::max());
  co_return true;
}

// ---- deadlines ----
// Setting a later deadline does not touch the timer (it fires early and re-arms itself), so
// the keep-alive hot path costs a clock read instead of a timer cancel + heap update.

void http1_connection::set_deadline(clock_type::time_point t) {
  deadline_ = t;
  timed_out_ = false;
  if (t == clock_type::time_point::max()) return;
  if (!timer_armed_ || t < timer_at_) arm_timer(t);
}

void http1_connection::arm_timer(clock_type::time_point t) {
  timer_armed_ = true;
  timer_at_ = t;
  timer_.expires_at(t);
  timer_.async_wait([self = shared_from_this(), gen = ++timer_gen_](const error_code&) {
    if (gen != self->timer_gen_) return;  // superseded by a newer arm
    self->timer_armed_ = false;
    self->on_timer();
  });
}

void http1_connection::on_timer() {
  if (closed_ || phase_ == phase::done || deadline_ == clock_type::time_point::max()) return;
  if (clock_type::now() < deadline_) {
    arm_timer(deadline_);
    return;
  }
  timed_out_ = true;
  error_code ec;
  socket_.cancel(ec);  // the pending read or write completes with operation_aborted
}

clock_type::time_point http1_connection::bounded(std::chrono::milliseconds timeout) const {
  return std::min(clock_type::now() + timeout, loop_.shutdown_deadline);
}

std::chrono::milliseconds http1_connection::header_or_grace(std::chrono::milliseconds normal) const {
  return loop_.draining ? std::min(normal, opts_.shutdown_idle_grace) : normal;
}

// ---- I/O ----

asio::awaitable<std::size_t> http1_connection::read_some() {
  eof_ = false;
  if (closed_) co_return 0;
  if (timed_out_ || clock_type::now() >= deadline_) {
    timed_out_ = true;
    co_return 0;
  }
  auto buf = in_.prepare(read_size);
  error_code ec;
  std::size_t n = co_await socket_.async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec));
  if (n > 0) {
    in_.commit(n);
    co_return n;
  }
  if (ec == asio::error::eof) eof_ = true;
  co_return 0;
}

asio::awaitable<bool> http1_connection::flush() {
  if (out_.empty()) co_return !closed_;
  if (closed_) co_return false;
  set_deadline(bounded(opts_.write_timeout));
  error_code ec;
  writing_ = true;
  co_await asio::async_write(socket_, asio::buffer(out_), asio::redirect_error(asio::use_awaitable, ec));
  writing_ = false;
  if (ec && timed_out_ && loop_.draining && deadline_ >= loop_.shutdown_deadline) count_cut();
  out_.clear();
  if (out_.capacity() > shrink_threshold) out_.shrink_to_fit();
  co_return !ec && !closed_;
}

bool http1_connection::bytes_waiting() {
  error_code ec;
  return socket_.available(ec) > 0 && !ec;
}

/// FIN first, then read and discard input, so that the kernel never answers unread input
/// with a RST that would destroy our last response. Ends when the client closes, or as soon
/// as the kernel says the whole response was acknowledged and nothing unread has arrived for
/// the quiet time (options::linger_quiet, or a few round trips); linger_timeout and
/// linger_max_bytes bound it whatever the client does.
asio::awaitable<void> http1_connection::linger_close() {
  if (closed_) co_return;
  phase_ = phase::lingering;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    const int fd = socket_.native_handle();
    const auto until = clock_type::now() + opts_.linger_timeout;
    // When the last input arrived, or the delivery was first seen: the quiet time runs from
    // the later of the two. max: not delivered yet.
    auto quiet_from = clock_type::time_point::max();
    std::size_t total = 0;
    for (;;) {
      if (closed_) break;
      // Discard what has arrived, without waiting.
      bool eof = false, failed = false, arrived = false;
      for (;;) {
        in_.clear();
        auto buf = in_.prepare(read_size);
        auto n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          arrived = true;
          total += static_cast<std::size_t>(n);
          if (total >= opts_.linger_max_bytes) break;
          continue;
        }
        if (n == 0) eof = true;  // the client closed: nothing left to protect
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) failed = true;
        break;
      }
      in_.clear();
      if (eof || failed || total >= opts_.linger_max_bytes) break;
      auto now = clock_type::now();
      if (now >= until) break;
      auto k = read_tcp_state(fd);
      auto wake = until;
      if (k.known && k.unread == 0) {
        // After shutdown the FIN counts as one unacknowledged byte.
        bool delivered = k.unacked <= 1;
        if (delivered) {
          if (quiet_from == clock_type::time_point::max() || arrived) quiet_from = now;
          auto quiet = std::max<clock_type::duration>(opts_.linger_quiet, linger_quiet_rtts * k.min_rtt);
          if (now >= quiet_from + quiet) break;
          wake = std::min(wake, quiet_from + quiet);
        } else {
          // No event tells of an ACK: ask again after about one round trip.
          wake = std::min(wake, now + std::clamp<clock_type::duration>(k.min_rtt, linger_poll_min, linger_poll_max));
        }
      }
      // Unknown state (not TCP?): the old rule, read until the client closes or time is up.
      set_deadline(wake);
      co_await socket_.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  socket_.close(ec);
}

void http1_connection::release_output() {
  // An empty string of zero capacity holds no heap block.
  if (out_.capacity() > std::string().capacity()) std::string().swap(out_);
}

void http1_connection::hand_over_to_h2(const request* upgraded, std::string_view settings) {
  // The socket and the bytes read so far go to the HTTP/2 connection (which registers
  // itself with the loop); this one ends without touching the socket again.
  end_request();
  timer_.cancel();
  sleep_timer_.cancel();
  std::string initial(in_.data(), in_.size());
  in_.clear();
  closed_ = true;
  phase_ = phase::done;
  start_h2_connection(loop_, std::move(socket_), initial, upgraded, settings);
}

void http1_connection::close_now() {
  phase_ = phase::done;
  error_code ec;
  socket_.close(ec);
  timer_.cancel();
  sleep_timer_.cancel();
}

// ---- responses ----

void http1_connection::reset_response() {
  detail::reset_response(res_);
  streaming_ = chunked_ = stream_close_ = stream_failed_ = head_request_ = false;
}

void http1_connection::write_response(bool close) {
  response_writer(out_, opts_.server_name)
      .whole(res_, loop_.date(), close, message_access::version(req_) == 10, head_request_);
}

asio::awaitable<void> http1_connection::reply_and_close(int status, std::string_view reason) {
  fail_response(res_, status, reason);
  write_response(true);
  loop_.count_status(res_.status);
  bool sent = co_await flush();
  if (sent) co_await linger_close();
}

asio::awaitable<void> http1_connection::reply_error() {
  return reply_and_close(parser_.error_status(), parser_.error_reason());
}

// ---- the request loop ----

asio::awaitable<void> http1_connection::serve() {
  // Each result goes into a variable first: GCC 12 miscompiles co_await inside an if
  // condition (the frame's `this` is lost), the reason for this pattern everywhere here.
  for (;;) {
    bool ok = co_await read_header();
    if (!ok) co_return;
    ok = co_await read_body();
    if (!ok) co_return;
    ok = co_await handle();
    if (!ok) co_return;
    ok = co_await respond();
    if (!ok) co_return;
  }
}

asio::awaitable<bool> http1_connection::read_header() {
  parser_.start(req_);
  reset_response();
  // Wait for the next request. A connection with no complete request is "idle" (or
  // "new"): during shutdown it only gets the grace. Bytes that arrived make it active.
  phase_ = in_.empty() ? phase::idle : phase::header;
  if (loop_.draining) grace_from_idle_ = phase_ == phase::idle;  // the grace begins now
  auto now = clock_type::now();
  if (phase_ == phase::idle)
    set_deadline(now + header_or_grace(requests_ ? opts_.idle_timeout : opts_.header_read_timeout));
  else
    set_deadline(now + header_or_grace(opts_.header_read_timeout));
  for (;;) {
    if (!in_.empty()) {
      if (phase_ == phase::idle) {
        phase_ = phase::header;
        if (requests_) set_deadline(clock_type::now() + header_or_grace(opts_.header_read_timeout));
      }
      // HTTP/2 with prior knowledge shares the listener: its first bytes are the preface
      // (RFC 9113 3.4), which no HTTP/1.1 request line starts with. A prefix of it: read on.
      bool complete = false;
      bool h2 = requests_ == 0 && opts_.http2 && looks_like_h2_preface({in_.data(), in_.size()}, complete);
      if (h2 && complete) {
        hand_over_to_h2(nullptr, {});
        co_return false;
      }
      if (!h2) {
        auto n = parser_.feed(in_.data(), in_.size());
        in_.consume(n);
        auto st = parser_.current();
        if (st == request_parser::state::error) {
          co_await reply_error();
          co_return false;
        }
        if (st != request_parser::state::need_more) break;
      }
    }
    if (!out_.empty()) {
      // Responses to pipelined requests went into out_ together; send them before waiting.
      auto saved = deadline_;
      bool sent = co_await flush();
      if (!sent) co_return false;
      // Shutdown may have begun during the write: its grace still bounds this wait.
      set_deadline(std::min(saved, grace_until_));
    }
    if (in_.empty() && !closed_ && !bytes_waiting()) {
      // Nothing buffered and nothing arrived: wait for readability holding no buffer, so an
      // idle connection costs its socket and this object, not a read buffer; the buffer is
      // allocated again when bytes arrive. The deadline's timer cancels the wait as it
      // cancels a read (read_some then reports the timeout). bytes_waiting() first: the
      // loop's reactor is edge-triggered and a wait is not retried speculatively, so bytes
      // that arrived before the wait began would never wake it.
      in_.release();
      release_output();
      error_code wec;
      co_await socket_.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, wec));
      // Readable: read at once, without a second operation through the reactor (it would
      // cost every keep-alive request one more trip through the loop's queue). Nothing read
      // (EOF, error, timeout, spurious wake-up): read_some below sorts it out as before.
      if (!wec && !closed_ && !timed_out_) {
        auto buf = in_.prepare(read_size);
        auto n = ::recv(socket_.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          in_.commit(static_cast<std::size_t>(n));
          continue;
        }
      }
    }
    std::size_t got = co_await read_some();
    if (got == 0) {
      // Grace over during shutdown, yet a request raced in: it has arrived, so answer it
      // (this is the golang/go#65802 race, closed). Only for a connection that had sent
      // nothing when its grace began, once, and for one more grace at most: a slowloris
      // trickling bytes would otherwise re-arm the wait each time a byte is waiting.
      if (timed_out_ && loop_.draining && !closed_ && grace_from_idle_ && !rescued_ && bytes_waiting()) {
        rescued_ = true;
        set_deadline(std::min(clock_type::now() + std::min(opts_.header_read_timeout, opts_.shutdown_idle_grace),
                              loop_.shutdown_deadline));
        continue;
      }
      if (eof_ || closed_) co_return false;  // the client closed first: nothing to protect
      co_await linger_close();
      co_return false;
    }
  }
  message_access::start(req_, loop_.stop_token);
  begin_request();
  co_return true;
}

asio::awaitable<bool> http1_connection::read_body() {
  if (parser_.current() != request_parser::state::header_done) co_return true;
  phase_ = phase::body;
  if (parser_.expect_continue() && in_.empty()) {
    // RFC 9110 10.1.1: the client waits for this before sending the body.
    out_ += "HTTP/1.1 100 Continue\r\n\r\n";
    bool sent = co_await flush();
    if (!sent) co_return false;
  }
  set_deadline(bounded(opts_.body_read_timeout));
  for (;;) {
    if (!in_.empty()) {
      auto n = parser_.feed(in_.data(), in_.size());
      in_.consume(n);
      if (parser_.current() == request_parser::state::error) {
        co_await reply_error();
        co_return false;
      }
      if (parser_.current() == request_parser::state::complete) co_return true;
    }
    // Whatever is left in in_ is an incomplete piece (e.g. a chunk header): read more.
    std::size_t got = co_await read_some();
    if (got == 0) {
      if (eof_ && parser_.feed_eof() == request_parser::state::complete) co_return true;
      if (timed_out_ && loop_.draining && deadline_ >= loop_.shutdown_deadline) count_cut();
      if (timed_out_) co_await reply_and_close(408, "request body not received in time");
      co_return false;
    }
  }
}

asio::awaitable<bool> http1_connection::handle() {
  phase_ = phase::handling;
  head_request_ = req_.method() == "HEAD";
  // `Upgrade: h2c` (RFC 7540 3.2; curl --http2 on http:// asks for it): 101, then this
  // request is answered as stream 1 of an HTTP/2 connection. Not while draining: a
  // connection that is about to be closed gets its answer over HTTP/1.1.
  std::string settings;
  if (opts_.http2 && !loop_.draining && in_.empty() && wants_h2c_upgrade(req_, settings)) {
    out_ += "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    bool sent = co_await flush();
    if (!sent) co_return false;
    hand_over_to_h2(&req_, settings);
    co_return false;
  }
  auto r = co_await dispatch(loop_.srv, req_, res_, *this);
  co_return r == dispatch_result::answered && !closed_;
}

asio::awaitable<bool> http1_connection::respond() {
  bool close;
  if (streaming_) {
    if (stream_failed_) co_return false;
    if (chunked_) response_writer(out_, opts_.server_name).last_chunk();
    close = stream_close_;
  } else {
    // Shutdown began: this answer is the connection's last, unless the client already
    // pipelined more requests: those have arrived, so they are answered too and the
    // last of them carries the close.
    close = !message_access::keep_alive(req_) || wants_close(res_) || (loop_.draining && in_.empty() && !bytes_waiting());
    write_response(close);
  }
  loop_.count_status(res_.status);
  end_request();
  ++requests_;
  if (close) {
    bool sent = co_await flush();
    if (sent) co_await linger_close();
    co_return false;
  }
  if (out_.size() >= flush_threshold) {
    bool sent = co_await flush();
    if (!sent) co_return false;
  }
  co_return true;
}

} // namespace graceful::http::detail
