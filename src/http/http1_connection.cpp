#include "http/http1_connection.hpp"

#include <algorithm>
#include <cerrno>

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/dispatch.hpp"
#include "http/drained_wait.hpp"
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

http1_state::http1_state(loop& l)
    : timer_(*l.ctx), sleep_timer_(*l.ctx),
      parser_(parse_limits{l.srv.opts.max_header_bytes, l.srv.opts.max_body_bytes}) {}

// ---- the connection ----

http1_connection::http1_connection(loop& l, tcp::socket s)
    : connection_base(l), opts_(l.srv.opts), socket_(std::move(s)), accepted_at_(clock_type::now()) {}

http1_connection::~http1_connection() {
  // Safety nets: run(), run_linger() and finish_parked() did both already.
  if (linked_) http1_idle::of(loop_).unlink(*this);
  release_state();
}

void http1_connection::start(std::shared_ptr<http1_connection> self) {
  auto& c = *self;
  // A new connection's wait for its first request, as read_header's: set up here so that a
  // connection that sends nothing yet costs no coroutine either.
  // Its request is usually there by the time the accept completes: read it at once (one
  // syscall, where FIONREAD then the read were two).
  c.idle_deadline_ = c.next_request_wait(false, c.accepted_at_);
  switch (c.read_on_wake()) {
    case wake_read::got:
      c.resumed_ = true;
      c.activate(false, std::move(self));
      return;
    case wake_read::nothing:
      c.park(std::move(self));
      return;
    case wake_read::closed:  // connected and closed without a byte: nothing to answer
      c.finish_parked();
      return;
    case wake_read::failed:  // as a failed read in read_header: a lingering close
      c.activate(true, std::move(self));
      return;
  }
}

asio::awaitable<void> http1_connection::run(std::shared_ptr<http1_connection> self) {
  try {
    co_await self->serve();
  } catch (const std::exception& e) {
    self->parking_ = false;
    self->loop_.srv.log().error("http: connection failed: {}", e.what());
  } catch (...) {
    // Whatever escaped, the bookkeeping below must run: a connection left in the loop's
    // list would be used after free at close, and shutdown would wait for it forever.
    self->parking_ = false;
    self->loop_.srv.log().error("http: connection failed: non-std::exception");
  }
  if (self->parking_) {
    self->parking_ = false;
    auto* c = self.get();
    c->park(std::move(self));
    co_return;
  }
  self->close_now();
  self->release_state();
  self->finish();
}

asio::awaitable<void> http1_connection::run_linger(std::shared_ptr<http1_connection> self) {
  try {
    co_await self->linger_close();
  } catch (const std::exception& e) {
    self->loop_.srv.log().error("http: connection failed: {}", e.what());
  } catch (...) {
    self->loop_.srv.log().error("http: connection failed: non-std::exception");
  }
  self->close_now();
  self->release_state();
  self->finish();
}

// ---- what the loop calls ----

void http1_connection::begin_shutdown() {
  if (!st_) {
    // Parked: the grace, as for a connection waiting in read_header.
    auto g = clock_type::now() + opts_.shutdown_idle_grace;
    grace_until_ = g;
    grace_from_idle_ = true;
    if (linked_ && g < idle_deadline_) {
      idle_deadline_ = g;
      http1_idle::of(loop_).lowered(*this);
    }
    return;
  }
  // A connection without a complete request gets the grace; handlers sleeping in
  // sleep_or_stop wake up.
  if (phase_ == phase::idle || phase_ == phase::header) {
    auto g = clock_type::now() + opts_.shutdown_idle_grace;
    grace_until_ = g;
    grace_from_idle_ = phase_ == phase::idle && st_->in_.empty();
    if (g < st_->deadline_) set_deadline(g);
  } else if (phase_ == phase::body || st_->writing_) {
    // A slow upload or a slow reader ends by the shutdown's deadline, not by its own
    // (60 s body, 30 s write) timeout.
    if (loop_.shutdown_deadline < st_->deadline_) set_deadline(loop_.shutdown_deadline);
  }
  if (st_->sleeping_) st_->sleep_timer_.cancel();
}

void http1_connection::force_close() {
  closed_ = true;
  error_code ec;
  socket_.close(ec);  // a parked connection's wait ends too (on_wake then finishes it)
  if (!st_) return;
  st_->timer_.cancel();
  st_->sleep_timer_.cancel();
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
    out += st_->req_.method();
    out += ' ';
    out += st_->req_.path().substr(0, 200);
    out += "\" request_age=" + std::to_string(duration_cast<ms>(now - st_->req_.received()).count()) + "ms";
  }
  out += '\n';
}

// ---- what a handler's context calls ----

asio::awaitable<bool> http1_connection::write_chunk(std::string_view data) {
  if (closed_ || st_->stream_failed_) co_return false;
  response_writer w(st_->out_, opts_.server_name);
  if (!st_->streaming_) {
    st_->streaming_ = true;
    st_->chunked_ = message_access::version(st_->req_) == 11;
    // An HTTP/1.0 client has no chunked coding: the end of the body is our close.
    st_->stream_close_ = !st_->chunked_ || !message_access::keep_alive(st_->req_) || loop_.draining || wants_close(st_->res_);
    head_framing f;
    f.chunked = st_->chunked_;
    f.no_length = true;
    f.close = st_->stream_close_;
    f.http10 = message_access::version(st_->req_) == 10;
    w.head(st_->res_, loop_.stamp(), f);
  }
  if (!data.empty() && !st_->head_request_) {
    if (st_->chunked_) w.chunk(data);
    else st_->out_.append(data);
  }
  auto saved = st_->deadline_;
  bool ok = co_await flush();
  set_deadline(saved);
  if (!ok) st_->stream_failed_ = true;
  co_return ok;
}

asio::awaitable<bool> http1_connection::sleep_or_stop(std::chrono::milliseconds d) {
  if (loop_.draining || closed_) co_return false;
  st_->sleep_timer_.expires_after(d);
  st_->sleeping_ = true;
  error_code ec;
  co_await st_->sleep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  st_->sleeping_ = false;
  co_return !ec && !loop_.draining && !closed_;
}

asio::awaitable<bool> http1_connection::before_async_handler() {
  // Responses to earlier pipelined requests go out first: this handler may take long.
  if (!st_->out_.empty()) {
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
  st_->deadline_ = t;
  st_->timed_out_ = false;
  if (t == clock_type::time_point::max()) return;
  if (!st_->timer_armed_ || t < st_->timer_at_) arm_timer(t);
}

void http1_connection::arm_timer(clock_type::time_point t) {
  auto& s = *st_;
  s.timer_armed_ = true;
  s.timer_at_ = t;
  s.timer_.expires_at(t);
  // The wake-up goes to whichever connection owns the state when it fires: a state goes
  // back to the loop with its timer armed, and the next owner's later deadline needs no
  // re-arm (it fires early, and on_timer re-arms it).
  s.timer_.async_wait([st = st_, gen = ++s.timer_gen_](const error_code&) {
    if (gen != st->timer_gen_) return;  // superseded by a newer arm
    st->timer_armed_ = false;
    if (st->owner_) st->owner_->on_timer();
  });
}

void http1_connection::on_timer() {
  if (closed_ || phase_ == phase::done || st_->deadline_ == clock_type::time_point::max()) return;
  if (clock_type::now() < st_->deadline_) {
    arm_timer(st_->deadline_);
    return;
  }
  st_->timed_out_ = true;
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
  st_->eof_ = false;
  if (closed_) co_return 0;
  if (st_->timed_out_ || clock_type::now() >= st_->deadline_) {
    st_->timed_out_ = true;
    co_return 0;
  }
  auto buf = st_->in_.prepare(read_size);
  error_code ec;
  std::size_t n = co_await socket_.async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec));
  if (n > 0) {
    st_->in_.commit(n);
    co_return n;
  }
  if (ec == asio::error::eof) st_->eof_ = true;
  co_return 0;
}

bool http1_connection::send_now(bool last) {
  if (st_->out_.empty()) return !closed_;
  if (closed_) return false;
  // Send at once: a response almost always fits in the socket's buffer, and then this is its
  // one syscall, with no write operation through the reactor (its initiation, completion and
  // the coroutine's resumption cost ~5% of the CPU per keep-alive request: bench/RESULTS.md,
  // issue 13 item 2). What the kernel did not take is left for write_rest.
  // `last`: the connection closes after this; MSG_MORE lets close() send the response's tail
  // and the FIN in one segment.
  const int flags = MSG_DONTWAIT | MSG_NOSIGNAL | (last ? MSG_MORE : 0);
  auto n = ::send(socket_.native_handle(), st_->out_.data(), st_->out_.size(), flags);
  if (n == static_cast<ssize_t>(st_->out_.size())) {
    st_->out_.clear();
    return true;
  }
  if (n > 0) {
    st_->out_.erase(0, static_cast<std::size_t>(n));
  } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    // The peer is gone (EPIPE, ECONNRESET): nothing more can reach it.
    st_->out_.clear();
    return false;
  }
  return true;
}

asio::awaitable<bool> http1_connection::write_rest() {
  if (st_->out_.empty()) co_return !closed_;
  if (closed_) co_return false;
  set_deadline(bounded(opts_.write_timeout));
  error_code ec;
  st_->writing_ = true;
  co_await asio::async_write(socket_, asio::buffer(st_->out_), asio::redirect_error(asio::use_awaitable, ec));
  st_->writing_ = false;
  if (ec && st_->timed_out_ && loop_.draining && st_->deadline_ >= loop_.shutdown_deadline) count_cut();
  st_->out_.clear();
  if (st_->out_.capacity() > shrink_threshold) st_->out_.shrink_to_fit();
  co_return !ec && !closed_;
}

asio::awaitable<bool> http1_connection::flush(bool last) {
  bool sent = send_now(last);
  if (!sent) co_return false;
  sent = co_await write_rest();
  co_return sent;
}

bool http1_connection::bytes_waiting() {
  error_code ec;
  return socket_.available(ec) > 0 && !ec;
}

void http1_connection::release_output() {
  // An empty string of zero capacity holds no heap block.
  if (st_->out_.capacity() > std::string().capacity()) std::string().swap(st_->out_);
}

void http1_connection::hand_over_to_h2(const request* upgraded, std::string_view settings) {
  // The socket and the bytes read so far go to the HTTP/2 connection (which registers
  // itself with the loop); this one ends without touching the socket again.
  end_request();
  std::string initial(st_->in_.data(), st_->in_.size());
  st_->in_.clear();
  closed_ = true;
  phase_ = phase::done;
  start_h2_connection(loop_, std::move(socket_), initial, upgraded, settings);
}

void http1_connection::close_now() {
  // The state's timer is left armed: it serves the state's next owner (arm_timer).
  phase_ = phase::done;
  error_code ec;
  socket_.close(ec);
}

// ---- responses ----

void http1_connection::reset_response() {
  detail::reset_response(st_->res_);
  st_->streaming_ = st_->chunked_ = st_->stream_close_ = st_->stream_failed_ = st_->head_request_ = false;
}

void http1_connection::write_response(bool close) {
  response_writer(st_->out_, opts_.server_name)
      .whole(st_->res_, loop_.stamp(), close, message_access::version(st_->req_) == 10, st_->head_request_);
}

asio::awaitable<void> http1_connection::reply_and_close(int status, std::string_view reason) {
  fail_response(st_->res_, status, reason);
  write_response(true);
  loop_.count_status(st_->res_.status);
  bool sent = co_await flush();
  if (sent) co_await linger_close();
}

asio::awaitable<void> http1_connection::reply_error() {
  return reply_and_close(st_->parser_.error_status(), st_->parser_.error_reason());
}

// ---- the request loop ----

asio::awaitable<void> http1_connection::serve() {
  // Each result goes into a variable first: GCC 12 miscompiles co_await inside an if
  // condition (the frame's `this` is lost), the reason for this pattern everywhere here.
  // A request without a body, answered by a sync handler, costs no coroutine frame besides
  // read_header's: each is an allocation (Asio 1.74 recycles one frame per thread), so the
  // steps that need none for such a request are plain calls.
  for (;;) {
    bool ok = co_await read_header();
    if (!ok) co_return;
    if (st_->parser_.current() == request_parser::state::header_done) {
      drained_ = false;
      ok = co_await read_body();
      if (!ok) co_return;
    }
    phase_ = phase::handling;
    st_->head_request_ = st_->req_.method() == "HEAD";
    // `Upgrade: h2c` (RFC 7540 3.2; curl --http2 on http:// asks for it): 101, then this
    // request is answered as stream 1 of an HTTP/2 connection. Not while draining: a
    // connection that is about to be closed gets its answer over HTTP/1.1.
    std::string settings;
    if (opts_.http2 && !loop_.draining && st_->in_.empty() && wants_h2c_upgrade(st_->req_, settings)) {
      co_await upgrade_to_h2c(settings);
      co_return;
    }
    if (const async_handler* h = dispatch_now(loop_.srv, st_->req_, st_->res_, *this)) {
      drained_ = false;
      auto r = co_await dispatch_async(loop_.srv, *h, st_->req_, st_->res_, *this);
      if (r != dispatch_result::answered) co_return;
    }
    if (closed_) co_return;
    bool close = false;
    ok = finish_response(close);
    if (!ok) co_return;
    if (close) {
      co_await close_after_response();
      co_return;
    }
    if (st_->out_.size() >= flush_threshold) {
      drained_ = false;
      ok = co_await flush();
      if (!ok) co_return;
    }
  }
}

asio::awaitable<bool> http1_connection::read_header() {
  // close() may have cut a woken-up connection before its coroutine began (co_spawn posts).
  if (closed_) co_return false;
  cooled_ = false;
  st_->parser_.start(st_->req_);
  reset_response();
  // One clock read per pass instead of one per use (deadlines, the request's arrival time),
  // taken again after every suspension: the vDSO clock was ~10% of the server's user-space
  // time per keep-alive request (bench/RESULTS.md, session 9).
  auto now = clock_type::now();
  if (resumed_) {
    // A parked connection woke up (start(), on_wake()): its wait was set up before it
    // parked, and what arrived is in in_.
    resumed_ = false;
    // (begin_shutdown may have cut the state's deadline since: the grace.)
    set_deadline(std::min(idle_deadline_, st_->deadline_));
  } else {
    set_deadline(next_request_wait(!st_->in_.empty(), now));
  }
  for (;;) {
    if (!st_->in_.empty()) {
      if (phase_ == phase::idle) {
        phase_ = phase::header;
        if (requests_) set_deadline(now + header_or_grace(opts_.header_read_timeout));
      }
      // HTTP/2 with prior knowledge shares the listener: its first bytes are the preface
      // (RFC 9113 3.4), which no HTTP/1.1 request line starts with. A prefix of it: read on.
      bool complete = false;
      bool h2 = requests_ == 0 && opts_.http2 && looks_like_h2_preface({st_->in_.data(), st_->in_.size()}, complete);
      if (h2 && complete) {
        hand_over_to_h2(nullptr, {});
        co_return false;
      }
      if (!h2) {
        auto n = st_->parser_.feed(st_->in_.data(), st_->in_.size());
        st_->in_.consume(n);
        auto st = st_->parser_.current();
        if (st == request_parser::state::error) {
          co_await reply_error();
          co_return false;
        }
        if (st != request_parser::state::need_more) break;
      }
    }
    if (!st_->out_.empty()) {
      // Responses to pipelined requests went into out_ together; send them before waiting.
      auto saved = st_->deadline_;
      // flush(), spelled out: a call to it would cost a coroutine frame per request even
      // when the send completes at once (serve's comment).
      bool sent = send_now(false);
      if (sent && !st_->out_.empty()) {
        drained_ = false;
        sent = co_await write_rest();
        now = clock_type::now();
      }
      if (!sent) co_return false;
      // Shutdown may have begun during the write: its grace still bounds this wait.
      set_deadline(std::min(saved, grace_until_));
      if (st_->in_.empty() && !drained_) {
        // The client reads the response before it sends its next request: look for that
        // request only after the loop's other ready work (a look right after the send finds
        // nothing: bench/RESULTS.md). This is also what keeps a client that pipelines
        // without pause from holding the loop. Not needed when the last read drained the
        // socket: then the wait below is the look (nginx's rule), and the loop's poll
        // answers the connections in the order their requests came.
        co_await asio::post(socket_.get_executor(), asio::use_awaitable);
        now = clock_type::now();
      }
    }
    bool would_block = false;
    if (st_->in_.empty() && !closed_ && !st_->timed_out_) {
      if (drained_) {
        // Nothing can have arrived unseen since the read that drained the socket (and no
        // suspension since): wait for the edge of the next bytes (drained_wait.hpp), with no
        // read that would find nothing.
        would_block = true;
      } else {
        // Read at once, without an operation through the reactor: a busy client's next
        // request is usually there by now, and this is its one syscall (FIONREAD, then a
        // read through the reactor, cost two and a trip through the loop's queue:
        // bench/RESULTS.md, issue 13 item 2). Only if nothing is there does the connection
        // wait. Also needed before the wait: the reactor is edge-triggered, so bytes that
        // arrived before the wait began would not wake it (drained_wait.hpp).
        auto buf = st_->in_.prepare(read_size);
        auto n = ::recv(socket_.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          st_->in_.commit(static_cast<std::size_t>(n));
          drained_ = static_cast<std::size_t>(n) < buf.size();
          continue;
        }
        // EOF and errors: read_some below reports them.
        would_block = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
      }
    }
    drained_ = false;  // whatever happens next may suspend
    if (would_block) {
      // Nothing buffered and nothing arrived.
      const bool idle = phase_ == phase::idle;
      if (idle && cooled_) {
        // Waiting for the next request, and did for hot_idle_time already: the coroutine
        // ends and run() parks the connection (no coroutine, no state: see the header).
        // The deadline goes with it.
        cooled_ = false;
        parking_ = true;
        co_return false;
      }
      // Wait here, in the coroutine, holding no read buffer: inside a request header whose
      // bytes the parser has all taken, or (idle) for at most hot_idle_time, so that a busy
      // keep-alive connection does not pay for ending and starting its coroutine at every
      // request. The deadline's timer cancels the wait as it cancels a read (read_some then
      // reports the timeout).
      auto& hot = http1_idle::of(loop_);
      if (idle) {
        idle_deadline_ = now + hot_idle_time;
        hot.link(*this, true);
      }
      st_->in_.release();
      error_code wec;
      co_await async_wait_drained(socket_, asio::redirect_error(asio::use_awaitable, wec));
      now = clock_type::now();
      hot.unlink(*this);
      if (cooled_ && wec) continue;  // cool_down() cancelled the wait: park (if nothing came)
      cooled_ = false;
      // Readable: the read at the top of the loop takes it, without a second operation
      // through the reactor. A timeout or a close: read_some below reports it.
      if (!wec) continue;
    }
    std::size_t got = co_await read_some();
    now = clock_type::now();
    if (got == 0) {
      // Grace over during shutdown, yet a request raced in: it has arrived, so answer it
      // (this is the golang/go#65802 race, closed). Only for a connection that had sent
      // nothing when its grace began, once, and for one more grace at most: a slowloris
      // trickling bytes would otherwise re-arm the wait each time a byte is waiting.
      if (st_->timed_out_ && loop_.draining && !closed_ && grace_from_idle_ && !rescued_ && bytes_waiting()) {
        rescued_ = true;
        set_deadline(std::min(now + std::min(opts_.header_read_timeout, opts_.shutdown_idle_grace),
                              loop_.shutdown_deadline));
        continue;
      }
      if (st_->eof_ || closed_) co_return false;  // the client closed first: nothing to protect
      co_await linger_close();
      co_return false;
    }
  }
  message_access::start(st_->req_, loop_.stop_token, now);
  begin_request();
  co_return true;
}

asio::awaitable<bool> http1_connection::read_body() {
  if (st_->parser_.current() != request_parser::state::header_done) co_return true;
  phase_ = phase::body;
  if (st_->parser_.expect_continue() && st_->in_.empty()) {
    // RFC 9110 10.1.1: the client waits for this before sending the body.
    st_->out_ += "HTTP/1.1 100 Continue\r\n\r\n";
    bool sent = co_await flush();
    if (!sent) co_return false;
  }
  set_deadline(bounded(opts_.body_read_timeout));
  for (;;) {
    if (!st_->in_.empty()) {
      auto n = st_->parser_.feed(st_->in_.data(), st_->in_.size());
      st_->in_.consume(n);
      if (st_->parser_.current() == request_parser::state::error) {
        co_await reply_error();
        co_return false;
      }
      if (st_->parser_.current() == request_parser::state::complete) co_return true;
    }
    // Whatever is left in st_->in_ is an incomplete piece (e.g. a chunk header): read more.
    std::size_t got = co_await read_some();
    if (got == 0) {
      if (st_->eof_ && st_->parser_.feed_eof() == request_parser::state::complete) co_return true;
      if (st_->timed_out_ && loop_.draining && st_->deadline_ >= loop_.shutdown_deadline) count_cut();
      if (st_->timed_out_) co_await reply_and_close(408, "request body not received in time");
      co_return false;
    }
  }
}

asio::awaitable<void> http1_connection::upgrade_to_h2c(std::string_view settings) {
  st_->out_ += "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  bool sent = co_await flush();
  if (sent) hand_over_to_h2(&st_->req_, settings);
}

bool http1_connection::finish_response(bool& close) {
  if (st_->streaming_) {
    if (st_->stream_failed_) return false;
    if (st_->chunked_) response_writer(st_->out_, opts_.server_name).last_chunk();
    close = st_->stream_close_;
  } else {
    // Shutdown began: this answer is the connection's last, unless the client already
    // pipelined more requests: those have arrived, so they are answered too and the
    // last of them carries the close.
    close = !message_access::keep_alive(st_->req_) || wants_close(st_->res_) || (loop_.draining && st_->in_.empty() && !bytes_waiting());
    write_response(close);
  }
  loop_.count_status(st_->res_.status);
  end_request();
  ++requests_;
  return true;
}

asio::awaitable<void> http1_connection::close_after_response() {
  if (!message_access::keep_alive(st_->req_) && st_->in_.empty() && !bytes_waiting()) {
    // The client asked for the close (Connection: close, HTTP/1.0): it sends nothing more
    // here (RFC 9112 9.6), and with nothing unread close() cannot make the kernel reset
    // it, so no lingering close (nginx's rule as well; a close the client did not ask
    // for, or one with input unread, still lingers). The response is queued with MSG_MORE
    // (flush's `last`): close() sends its tail and the FIN in one segment. Measured: 33 -> 19
    // us of CPU per Connection: close request (bench/RESULTS.md, issue 13 item 2).
    co_await flush(true);  // run() closes the socket
    co_return;
  }
  bool sent = co_await flush();
  if (sent) co_await linger_close();
}

} // namespace graceful::http::detail
