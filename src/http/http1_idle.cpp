// The idle side of an HTTP/1.1 connection: the loop's http1_idle (one timer over the idle
// connections, the spare request states, the wait operations' allocator) and a connection
// parked without a coroutine until its socket is readable. The request loop is in
// http1_connection.cpp, the lingering close in http1_linger.cpp.
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
  // Edge-triggered reactor: the caller made sure nothing is waiting already (a recv that
  // would block: read_on_wake, read_header), the precondition of drained_wait.hpp.
  async_wait_drained(socket_, wake_handler{std::move(self), &http1_idle::of(loop_)});
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
    switch (read_on_wake()) {
      case wake_read::got:
        idle.unlink(*this);
        parked_ = false;
        resumed_ = true;
        activate(false, std::move(self));
        return;
      case wake_read::nothing:  // a spurious wake-up: wait on
        wait_readable(std::move(self));
        return;
      case wake_read::closed:  // the client closed first: nothing to protect
        finish_parked();
        return;
      case wake_read::failed:
        break;
    }
  }
  // The wait or the read failed: as a failed read in read_header, a lingering close.
  idle.unlink(*this);
  parked_ = false;
  activate(true, std::move(self));
}

http1_connection::wake_read http1_connection::read_on_wake() {
  // Read at once into a state's buffer, without an operation through the reactor (it would
  // cost every keep-alive request one more trip through the loop).
  if (!st_) st_ = http1_idle::of(loop_).take(loop_, *this);
  auto buf = st_->in_.prepare(read_size);
  auto n = ::recv(socket_.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
  if (n > 0) {
    st_->in_.commit(static_cast<std::size_t>(n));
    return wake_read::got;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    release_state();
    return wake_read::nothing;
  }
  return n == 0 ? wake_read::closed : wake_read::failed;
}

void http1_connection::activate(bool linger, std::shared_ptr<http1_connection> self) {
  if (!st_) st_ = http1_idle::of(loop_).take(loop_, *this);
  if (linger) asio::co_spawn(*loop_.ctx, run_linger(std::move(self)), asio::detached);
  else asio::co_spawn(*loop_.ctx, run(std::move(self)), asio::detached);
}

void http1_connection::release_state() noexcept {
  if (st_) http1_idle::of(loop_).give_back(std::move(st_));
}

clock_type::time_point http1_connection::next_request_wait(bool have_bytes, clock_type::time_point now) {
  // A connection with no complete request is "idle" (or "new"): during shutdown it only
  // gets the grace. Bytes that arrived make it active.
  phase_ = have_bytes ? phase::header : phase::idle;
  if (loop_.draining) grace_from_idle_ = phase_ == phase::idle;  // the grace begins now
  if (phase_ == phase::idle)
    return now + header_or_grace(requests_ ? opts_.idle_timeout : opts_.header_read_timeout);
  return now + header_or_grace(opts_.header_read_timeout);
}

} // namespace graceful::http::detail
