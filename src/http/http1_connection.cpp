#include "http/http1_connection.hpp"

#include <algorithm>
#include <cerrno>

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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

/// Allocates a parked connection's wait operation from its loop's http1_idle.
template <class T> struct idle_op_allocator {
  using value_type = T;
  http1_idle* idle;
  explicit idle_op_allocator(http1_idle* i) noexcept : idle(i) {}
  template <class U> idle_op_allocator(const idle_op_allocator<U>& o) noexcept : idle(o.idle) {}
  T* allocate(std::size_t n) { return static_cast<T*>(idle->op_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { idle->op_deallocate(p, n * sizeof(T)); }
  template <class U> bool operator==(const idle_op_allocator<U>& o) const noexcept { return idle == o.idle; }
  template <class U> bool operator!=(const idle_op_allocator<U>& o) const noexcept { return idle != o.idle; }
};

/// The handler of a parked connection's readiness wait.
struct http1_connection::wake_handler {
  std::shared_ptr<http1_connection> self;
  http1_idle* idle;
  using allocator_type = idle_op_allocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(idle); }
  void operator()(const error_code& ec) {
    auto* c = self.get();
    c->on_wake(ec, std::move(self));
  }
};

http1_state::http1_state(loop& l)
    : timer_(*l.ctx), sleep_timer_(*l.ctx),
      parser_(parse_limits{l.srv.opts.max_header_bytes, l.srv.opts.max_body_bytes}) {}

// ---- the loop's idle connections ----

asio::execution_context::id http1_idle::id;

http1_idle::http1_idle(asio::io_context& ctx) : asio::execution_context::service(ctx), timer_(ctx) {
  spare_.reserve(spare_states_max);
  free_ops_.reserve(spare_ops_max);
}

http1_idle::~http1_idle() {
  for (void* p : free_ops_) ::operator delete(p);
}

void http1_idle::shutdown() {
  // The context is going away: its handlers are destroyed next, and with them every
  // connection, which unlink themselves (the lists outlive them: they go in ~http1_idle).
  spare_.clear();
}

http1_idle& http1_idle::of(loop& l) {
  if (!l.http1) {
    l.http1 = &asio::use_service<http1_idle>(*l.ctx);
    l.http1->loop_ = &l;
  }
  return *l.http1;
}

http1_idle::list& http1_idle::list_of(const http1_connection& c) noexcept {
  return c.hot_ ? hot_ : c.requests_ ? keep_alive_ : fresh_;
}

void http1_idle::insert(list& l, http1_connection& c) noexcept {
  // Each list's entries share one timeout, so a new one nearly always goes last; walking
  // back from the tail keeps the order when it does not (a flush that took a while since
  // the deadline was set). During shutdown order does not matter (on_timer looks at all).
  http1_connection* after = l.tail;
  if (!loop_->draining)
    while (after && after->idle_deadline_ > c.idle_deadline_) after = after->idle_prev_;
  c.idle_prev_ = after;
  c.idle_next_ = after ? after->idle_next_ : l.head;
  if (c.idle_next_) c.idle_next_->idle_prev_ = &c;
  else l.tail = &c;
  if (after) after->idle_next_ = &c;
  else l.head = &c;
  c.linked_ = true;
}

void http1_idle::remove(list& l, http1_connection& c) noexcept {
  if (c.idle_prev_) c.idle_prev_->idle_next_ = c.idle_next_;
  else l.head = c.idle_next_;
  if (c.idle_next_) c.idle_next_->idle_prev_ = c.idle_prev_;
  else l.tail = c.idle_prev_;
  c.idle_prev_ = c.idle_next_ = nullptr;
  c.linked_ = false;
}

void http1_idle::link(http1_connection& c, bool hot) {
  c.hot_ = hot;
  insert(list_of(c), c);
  arm(c.idle_deadline_);
}

void http1_idle::unlink(http1_connection& c) noexcept {
  // The timer is left as it is: it fires early, finds nothing due, and re-arms.
  if (c.linked_) remove(list_of(c), c);
}

void http1_idle::lowered(http1_connection& c) {
  // Shutdown's grace: the loop is draining, so on_timer looks at every entry.
  arm(c.idle_deadline_);
}

void http1_idle::arm(clock_type::time_point t) {
  if (t >= timer_at_) return;  // armed earlier already (max: never)
  timer_at_ = t;
  timer_.expires_at(t);
  timer_.async_wait([this](const error_code& ec) {
    if (ec == asio::error::operation_aborted) return;  // re-armed earlier, or shutting down
    timer_at_ = clock_type::time_point::max();
    on_timer();
  });
}

void http1_idle::on_timer() {
  auto now = clock_type::now();
  auto next = clock_type::time_point::max();
  const bool all = loop_->draining;
  for (list* l : {&hot_, &fresh_, &keep_alive_}) {
    // In deadline order: the due ones are first. During shutdown (the grace cut the
    // deadlines, and entries are only appended) every entry is looked at: each list is
    // then emptied within a grace or two, so this costs a few passes in all. The hot list
    // is in order always (one duration, appended as they come).
    const bool hot = l == &hot_;
    for (http1_connection* c = l->head; c;) {
      http1_connection* next_c = c->idle_next_;
      if (c->idle_deadline_ <= now) {
        remove(*l, *c);
        if (hot) c->cool_down();
        else c->idle_expired();
      } else {
        next = std::min(next, c->idle_deadline_);
        if (!all || hot) break;
      }
      c = next_c;
    }
  }
  if (next != clock_type::time_point::max()) arm(next);
}

void* http1_idle::op_allocate(std::size_t n) {
  if (n == op_size_ && !free_ops_.empty()) {
    void* p = free_ops_.back();
    free_ops_.pop_back();
    return p;
  }
  return ::operator new(n);
}

void http1_idle::op_deallocate(void* p, std::size_t n) noexcept {
  if (op_size_ == 0) op_size_ = n;
  if (n == op_size_ && free_ops_.size() < spare_ops_max) {
    free_ops_.push_back(p);  // reserved: never allocates
    return;
  }
  ::operator delete(p);
}

std::shared_ptr<http1_state> http1_idle::take(loop& l, http1_connection& owner) {
  std::shared_ptr<http1_state> s;
  if (!spare_.empty()) {
    s = std::move(spare_.back());
    spare_.pop_back();
  } else {
    s = std::make_shared<http1_state>(l);
  }
  s->owner_ = &owner;
  s->deadline_ = clock_type::time_point::max();
  s->timed_out_ = s->eof_ = s->sleeping_ = s->writing_ = false;
  return s;
}

void http1_idle::give_back(std::shared_ptr<http1_state> s) noexcept {
  s->owner_ = nullptr;
  s->in_.clear();
  s->in_.release();
  // A spare keeps a usual-size output buffer (one allocation less per request), not more.
  if (s->out_.capacity() > read_size) std::string().swap(s->out_);
  else s->out_.clear();
  if (spare_.size() < spare_states_max) {
    spare_.push_back(std::move(s));
    return;
  }
  // Not kept: a wait still armed would keep it alive until it fires (up to idle_timeout).
  s->timer_.cancel();
}

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
  c.idle_deadline_ = c.next_request_wait(false);
  if (c.bytes_waiting()) {
    c.resumed_ = true;
    c.activate(false, std::move(self));
    return;
  }
  c.park(std::move(self));
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

// ---- idle without a coroutine ----

void http1_connection::park(std::shared_ptr<http1_connection> self) {
  // The wait's deadline (idle_timeout, header_read_timeout or the grace) moves from the
  // state's timer to the loop's idle list.
  if (st_) idle_deadline_ = st_->deadline_;
  release_state();
  parked_ = true;
  http1_idle::of(loop_).link(*this, false);
  wait_readable(std::move(self));
}

void http1_connection::wait_readable(std::shared_ptr<http1_connection> self) {
  // Edge-triggered reactor, and an async_wait is not tried speculatively: the caller made
  // sure nothing is waiting already (bytes_waiting() or a recv that would block).
  socket_.async_wait(tcp::socket::wait_read, wake_handler{std::move(self), &http1_idle::of(loop_)});
}

void http1_connection::idle_expired() {
  // Unlinked by the loop's timer. The wait ends with operation_aborted (or has already
  // ended, readable: on_wake sees expired_ first either way, as the old per-connection
  // timer's timed_out_ was seen before a read).
  expired_ = true;
  error_code ec;
  socket_.cancel(ec);
}

void http1_connection::cool_down() {
  // Unlinked by the loop's timer: idle for hot_idle_time in its coroutine. The wait ends
  // with operation_aborted (or has ended, readable: read_header sorts that out).
  cooled_ = true;
  error_code ec;
  socket_.cancel(ec);
}

void http1_connection::finish_parked() {
  if (linked_) http1_idle::of(loop_).unlink(*this);
  parked_ = false;
  close_now();
  release_state();
  finish();
}

void http1_connection::on_wake(const error_code& ec, std::shared_ptr<http1_connection> self) {
  if (closed_) {  // force_close(): close() cut it
    finish_parked();
    return;
  }
  auto& idle = http1_idle::of(loop_);
  if (expired_) {
    expired_ = false;
    parked_ = false;
    // Grace over during shutdown, yet a request raced in: it has arrived, so answer it
    // (read_header's rescue, the golang/go#65802 race), once.
    if (loop_.draining && grace_from_idle_ && !rescued_ && bytes_waiting()) {
      rescued_ = true;
      idle_deadline_ = std::min(clock_type::now() + std::min(opts_.header_read_timeout, opts_.shutdown_idle_grace),
                                loop_.shutdown_deadline);
      resumed_ = true;
      activate(false, std::move(self));
      return;
    }
    activate(true, std::move(self));  // idle time (or the grace) is up: lingering close
    return;
  }
  if (!ec) {
    // Readable: read at once into a state's buffer, without a second operation through the
    // reactor (it would cost every keep-alive request one more trip through the loop).
    st_ = idle.take(loop_, *this);
    auto buf = st_->in_.prepare(read_size);
    auto n = ::recv(socket_.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) {
      st_->in_.commit(static_cast<std::size_t>(n));
      idle.unlink(*this);
      parked_ = false;
      resumed_ = true;
      activate(false, std::move(self));
      return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      release_state();  // a spurious wake-up: wait on
      wait_readable(std::move(self));
      return;
    }
    if (n == 0) {  // the client closed first: nothing to protect
      finish_parked();
      return;
    }
  }
  // The wait or the read failed: as a failed read in read_header, a lingering close.
  idle.unlink(*this);
  parked_ = false;
  activate(true, std::move(self));
}

void http1_connection::activate(bool linger, std::shared_ptr<http1_connection> self) {
  if (!st_) st_ = http1_idle::of(loop_).take(loop_, *this);
  if (linger) asio::co_spawn(*loop_.ctx, run_linger(std::move(self)), asio::detached);
  else asio::co_spawn(*loop_.ctx, run(std::move(self)), asio::detached);
}

void http1_connection::release_state() noexcept {
  if (st_) http1_idle::of(loop_).give_back(std::move(st_));
}

clock_type::time_point http1_connection::next_request_wait(bool have_bytes) {
  // A connection with no complete request is "idle" (or "new"): during shutdown it only
  // gets the grace. Bytes that arrived make it active.
  phase_ = have_bytes ? phase::header : phase::idle;
  if (loop_.draining) grace_from_idle_ = phase_ == phase::idle;  // the grace begins now
  auto now = clock_type::now();
  if (phase_ == phase::idle)
    return now + header_or_grace(requests_ ? opts_.idle_timeout : opts_.header_read_timeout);
  return now + header_or_grace(opts_.header_read_timeout);
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
    w.head(st_->res_, loop_.date(), f);
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

asio::awaitable<bool> http1_connection::flush() {
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
        st_->in_.clear();
        auto buf = st_->in_.prepare(read_size);
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
      st_->in_.clear();
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
      .whole(st_->res_, loop_.date(), close, message_access::version(st_->req_) == 10, st_->head_request_);
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
  // close() may have cut a woken-up connection before its coroutine began (co_spawn posts).
  if (closed_) co_return false;
  cooled_ = false;
  st_->parser_.start(st_->req_);
  reset_response();
  if (resumed_) {
    // A parked connection woke up (start(), on_wake()): its wait was set up before it
    // parked, and what arrived is in in_.
    resumed_ = false;
    // (begin_shutdown may have cut the state's deadline since: the grace.)
    set_deadline(std::min(idle_deadline_, st_->deadline_));
  } else {
    set_deadline(next_request_wait(!st_->in_.empty()));
  }
  for (;;) {
    if (!st_->in_.empty()) {
      if (phase_ == phase::idle) {
        phase_ = phase::header;
        if (requests_) set_deadline(clock_type::now() + header_or_grace(opts_.header_read_timeout));
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
      bool sent = co_await flush();
      if (!sent) co_return false;
      // Shutdown may have begun during the write: its grace still bounds this wait.
      set_deadline(std::min(saved, grace_until_));
    }
    if (st_->in_.empty() && !closed_ && !st_->timed_out_ && !bytes_waiting()) {
      // Nothing buffered and nothing arrived. bytes_waiting() first: the loop's reactor is
      // edge-triggered and a wait is not retried speculatively, so bytes that arrived
      // before the wait began would never wake it.
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
        idle_deadline_ = clock_type::now() + hot_idle_time;
        hot.link(*this, true);
      }
      st_->in_.release();
      error_code wec;
      co_await socket_.async_wait(tcp::socket::wait_read, asio::redirect_error(asio::use_awaitable, wec));
      hot.unlink(*this);
      if (cooled_ && wec) continue;  // cool_down() cancelled the wait: park (if nothing came)
      cooled_ = false;
      // Readable: read at once, without a second operation through the reactor (it would
      // cost one more trip through the loop's queue). Nothing read (EOF, error, timeout,
      // spurious wake-up): read_some below sorts it out.
      if (!wec && !closed_ && !st_->timed_out_) {
        auto buf = st_->in_.prepare(read_size);
        auto n = ::recv(socket_.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          st_->in_.commit(static_cast<std::size_t>(n));
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
      if (st_->timed_out_ && loop_.draining && !closed_ && grace_from_idle_ && !rescued_ && bytes_waiting()) {
        rescued_ = true;
        set_deadline(std::min(clock_type::now() + std::min(opts_.header_read_timeout, opts_.shutdown_idle_grace),
                              loop_.shutdown_deadline));
        continue;
      }
      if (st_->eof_ || closed_) co_return false;  // the client closed first: nothing to protect
      co_await linger_close();
      co_return false;
    }
  }
  message_access::start(st_->req_, loop_.stop_token);
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

asio::awaitable<bool> http1_connection::handle() {
  phase_ = phase::handling;
  st_->head_request_ = st_->req_.method() == "HEAD";
  // `Upgrade: h2c` (RFC 7540 3.2; curl --http2 on http:// asks for it): 101, then this
  // request is answered as stream 1 of an HTTP/2 connection. Not while draining: a
  // connection that is about to be closed gets its answer over HTTP/1.1.
  std::string settings;
  if (opts_.http2 && !loop_.draining && st_->in_.empty() && wants_h2c_upgrade(st_->req_, settings)) {
    st_->out_ += "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    bool sent = co_await flush();
    if (!sent) co_return false;
    hand_over_to_h2(&st_->req_, settings);
    co_return false;
  }
  auto r = co_await dispatch(loop_.srv, st_->req_, st_->res_, *this);
  co_return r == dispatch_result::answered && !closed_;
}

asio::awaitable<bool> http1_connection::respond() {
  bool close;
  if (st_->streaming_) {
    if (st_->stream_failed_) co_return false;
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
  if (close) {
    if (!message_access::keep_alive(st_->req_) && st_->in_.empty() && !bytes_waiting()) {
      // The client asked for the close (Connection: close, HTTP/1.0): it sends nothing more
      // here (RFC 9112 9.6), and with nothing unread close() cannot make the kernel reset
      // it, so no lingering close (nginx's rule as well; a close the client did not ask
      // for, or one with input unread, still lingers). The response is queued with MSG_MORE:
      // close() sends its tail and the FIN in one segment. Measured: 33 -> 19 us of CPU per
      // Connection: close request (bench/RESULTS.md, issue 13 item 2).
      auto n = ::send(socket_.native_handle(), st_->out_.data(), st_->out_.size(), MSG_DONTWAIT | MSG_MORE | MSG_NOSIGNAL);
      if (n > 0) st_->out_.erase(0, static_cast<std::size_t>(n));
      co_await flush();  // what the kernel did not take at once; run() closes the socket
      co_return false;
    }
    bool sent = co_await flush();
    if (sent) co_await linger_close();
    co_return false;
  }
  if (st_->out_.size() >= flush_threshold) {
    bool sent = co_await flush();
    if (!sent) co_return false;
  }
  co_return true;
}

} // namespace graceful::http::detail
