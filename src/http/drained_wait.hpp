#pragma once
// A wait for a socket to become readable that costs no system call, for a caller that has
// just drained the socket.
//
// Asio 1.74's epoll reactor registers each socket once, edge-triggered, for input (at
// accept). Yet every async_wait() re-registers it with an epoll_ctl(EPOLL_CTL_MOD): a wait
// is not "speculative", and the reactor writes the same events again in case they changed.
// On a keep-alive connection that is one system call for nothing at every wait
// (bench/RESULTS.md, issue 13 item 2). nginx needs none: after a read that drained the socket,
// the next bytes, the FIN or an error make a new edge, and epoll reports it.
//
// async_wait_drained() queues the wait with the socket's reactor directly, as async_wait()
// does, minus the epoll_ctl: the next edge completes it; cancel() and close() end it with
// operation_aborted, as they end any wait; a wait still queued when the io_context is
// destroyed is destroyed with it, without a call.
//
// Precondition: since the loop last polled for events, a read of the socket returned EAGAIN
// (or fewer bytes than it asked for). "Since the loop last polled" means: in the same run of
// the loop's thread, with no suspension through the loop in between. Otherwise the edge of
// bytes that arrived meanwhile may have been reported already (to no one), and the wait
// would sleep until the next one. Every wait in the HTTP/1.1 connection reads first for that
// reason.
//
// This reaches into Asio's reactor (boost/asio/detail), an interface Boost does not promise.
// It is used with the Boost this project builds with (Debian 12's 1.74), whose reactor is
// epoll; any other Boost, or another reactor, gets plain async_wait().

#include <boost/version.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>

#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING) && BOOST_VERSION >= 107400 && \
    BOOST_VERSION < 107500
#define GRACEFUL_DRAINED_WAIT 1
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#else
#define GRACEFUL_DRAINED_WAIT 0
#endif

namespace graceful::http::detail {

#if GRACEFUL_DRAINED_WAIT
namespace drained_wait_impl {

namespace ad = boost::asio::detail;

/// The op being queued by this thread's start_op(): its first perform() is start_op's
/// speculative one, which must say "not ready" without a system call (the precondition).
/// Any later perform() is the reactor's, for an event: ready.
inline thread_local const ad::reactor_op* starting = nullptr;

template <class Handler, class IoExecutor>
class wait_op : public ad::reactor_op {
public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(wait_op);

  wait_op(Handler& handler, const IoExecutor& io_ex)
      : ad::reactor_op(boost::system::error_code(), &wait_op::do_perform, &wait_op::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(ad::reactor_op* base) { return base == starting ? not_done : done; }

  // As Asio's reactive_wait_op: the handler is moved out before the op's memory is freed
  // (a part of the handler may own that memory), then called unless the op is being destroyed.
  static void do_complete(void* owner, ad::operation* base, const boost::system::error_code&, std::size_t) {
    auto* o = static_cast<wait_op*>(base);
    ptr p = {std::addressof(o->handler_), o, o};
    ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    ad::binder1<Handler, boost::system::error_code> handler(o->handler_, o->ec_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) {
      ad::fenced_block b(ad::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

private:
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

/// Reaches the socket's reactor state (basic_socket keeps it protected).
struct socket_access : boost::asio::ip::tcp::socket {
  static auto& impl(boost::asio::ip::tcp::socket& s) { return (s.*(&socket_access::impl_)).get_implementation(); }
};

/// The reactor of the socket's io_context, looked up once per thread (a loop is one thread
/// with one io_context).
inline ad::reactor& reactor_of(boost::asio::ip::tcp::socket& s) {
  thread_local boost::asio::execution_context* ctx = nullptr;
  thread_local ad::reactor* r = nullptr;
  auto& c = boost::asio::query(s.get_executor(), boost::asio::execution::context);
  if (&c != ctx) {
    r = &boost::asio::use_service<ad::reactor>(c);
    ctx = &c;
  }
  return *r;
}

struct initiate {
  boost::asio::ip::tcp::socket* s;
  template <class Handler>
  void operator()(Handler&& h) const {
    using handler_type = std::decay_t<Handler>;
    using executor_type = boost::asio::ip::tcp::socket::executor_type;
    using op = wait_op<handler_type, executor_type>;
    handler_type handler(std::forward<Handler>(h));
    auto& impl = socket_access::impl(*s);
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
    typename op::ptr p = {std::addressof(handler), op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) op(handler, s->get_executor());
    starting = p.p;
    reactor_of(*s).start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation, true);
    starting = nullptr;
    p.v = p.p = nullptr;
  }
};

} // namespace drained_wait_impl
#endif

/// Waits until `s` is readable (or the wait is cancelled), with no system call. See the top
/// of this file for the precondition: a read of `s` found it drained since the loop last
/// polled. `token`: as for async_wait(), signature void(error_code).
template <class Token>
auto async_wait_drained(boost::asio::ip::tcp::socket& s, Token&& token) {
#if GRACEFUL_DRAINED_WAIT
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(drained_wait_impl::initiate{&s}, token);
#else
  return s.async_wait(boost::asio::ip::tcp::socket::wait_read, std::forward<Token>(token));
#endif
}

} // namespace graceful::http::detail
