#include "http/loop.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/connection_base.hpp"
#include "http/http1_connection.hpp"
#include "http/tuning.hpp"

namespace graceful::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {

/// A new connection on `l`, accepted on `li`: the protocol is chosen here (HTTP/1.1 only, for now).
void start_connection(loop& l, const listener& li, tcp::socket s) {
  // Responses are written whole; Nagle would only delay stream chunks and 100-continue.
  // Linux copies TCP_NODELAY from the listener to what it accepts (add_listener): set here
  // only where the listener could not take it, one system call per connection saved.
  if (!li.nodelay) {
    error_code ec;
    s.set_option(tcp::no_delay(true), ec);
  }
  bump(l.accepted);
  http1_connection::start(std::make_shared<http1_connection>(l, std::move(s)));
}

bool is_resource_exhaustion(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory;
}

asio::awaitable<void> accept_loop(loop& l, listener& li) {
  std::chrono::milliseconds backoff{0};
  for (;;) {
    if (!li.acceptor.is_open() || l.draining) break;
    if (static_cast<std::size_t>(l.srv.connections.load(std::memory_order_relaxed)) >= l.srv.opts.max_connections) {
      // Full: leave clients in the kernel backlog rather than refusing them.
      li.pause.expires_after(max_connections_pause);
      error_code ec;
      co_await li.pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    error_code ec;
    tcp::socket s = co_await li.acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !li.acceptor.is_open() || l.draining) break;
      if (is_resource_exhaustion(ec)) {
        // EMFILE/ENFILE: the connection stays queued and epoll keeps reporting the listener
        // readable, so retrying at once would spin (tuning.hpp).
        backoff = backoff.count() == 0 ? accept_backoff_first : std::min(backoff * 2, accept_backoff_max);
        auto now = clock_type::now();
        if (now - l.last_accept_log >= accept_error_log_interval) {
          l.last_accept_log = now;
          l.srv.log().warn("http: accept: {}; retrying in {} ms", ec.message(), backoff.count());
        }
        li.pause.expires_after(backoff);
        error_code ig;
        co_await li.pause.async_wait(asio::redirect_error(asio::use_awaitable, ig));
      }
      continue;  // ECONNABORTED and the like concern one client only
    }
    backoff = std::chrono::milliseconds(0);
    start_connection(l, li, std::move(s));
    const auto loops = l.srv.loops.size();
    if (loops > 1 &&
        l.conns.size() > static_cast<std::size_t>(l.srv.connections.load(std::memory_order_relaxed)) / loops + accept_share_slack) {
      li.pause.expires_after(accept_share_pause);  // its share taken: the others' turn (tuning.hpp)
      error_code ig;
      co_await li.pause.async_wait(asio::redirect_error(asio::use_awaitable, ig));
    }
  }
  l.srv.release();
}

} // namespace

std::string_view loop::date() {
  std::time_t t = std::time(nullptr);
  if (t != date_sec) {
    date_sec = t;
    std::tm tm{};
    gmtime_r(&t, &tm);
    date_len = std::strftime(date_buf, sizeof date_buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ok_head_.clear();
    append_status_lines(ok_head_, 200, srv.opts.server_name, {date_buf, date_len});
  }
  return {date_buf, date_len};
}

// Braced initialisers run left to right: date() refreshes ok_head_ before it is read.
head_stamp loop::stamp() { return {date(), ok_head_}; }

bool loop::add_listener(int fd, bool v6, std::error_code& e) {
  auto li = std::make_unique<listener>(*ctx);
  error_code ec;
  li->acceptor.assign(v6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    e = std::error_code(ec.value(), std::system_category());
    return false;
  }
  // Inherited by every accepted socket (start_connection); a listener that refuses it (not
  // TCP?) leaves the option to each connection.
  li->acceptor.set_option(tcp::no_delay(true), ec);
  li->nodelay = !ec;
  srv.retain();
  auto& ref = *li;
  listeners.push_back(std::move(li));
  asio::co_spawn(*ctx, accept_loop(*this, ref), asio::detached);
  return true;
}

void loop::close_listeners(bool take_queued) {
  error_code ec;
  for (auto& li : listeners) {
    if (take_queued && li->acceptor.is_open()) accept_queued(*li);
    li->acceptor.close(ec);
    li->pause.cancel();
  }
}

void loop::close_listener_fd(int fd) {
  error_code ec;
  for (auto& li : listeners) {
    if (li->acceptor.is_open() && li->acceptor.native_handle() == fd) {
      li->acceptor.close(ec);
      li->pause.cancel();
    }
  }
}

void loop::accept_queued(listener& li) {
  // Non-blocking accepts until the queue is empty (would_block), bounded. max_connections
  // does not apply: these clients are already connected, and closing the listener would
  // reset them.
  error_code ec;
  li.acceptor.non_blocking(true, ec);
  std::size_t n = 0;
  for (; n < max_accepts_at_close; ++n) {
    tcp::socket s = li.acceptor.accept(ec);
    if (ec == asio::error::connection_aborted) continue;  // that one client left first
    if (ec) {
      if (ec != asio::error::would_block && ec != asio::error::try_again)
        srv.log().warn("http: accepting the queued connections before closing a listener: {}", ec.message());
      break;
    }
    start_connection(*this, li, std::move(s));
  }
  if (n) srv.log().info("http: {} connections were waiting in the accept queue at shutdown; serving them", n);
}

void loop::begin_shutdown(clock_type::time_point deadline) {
  if (draining) return;
  draining = true;
  shutdown_deadline = deadline;
  stop.request_stop();
  // Everything the kernel already accepted is served (with Connection: close) before the
  // listener closes: closing it would reset those clients after their connect succeeded.
  close_listeners(true);
  auto copy = conns;  // begin_shutdown does not unlink, but stay safe against it
  for (auto* c : copy) c->begin_shutdown();
}

void loop::begin_close() {
  begin_shutdown();
  if (closing) return;
  closing = true;
  auto copy = conns;
  // Counted before the cut: what a stop loses is reported (exit status, log, /metrics).
  std::uint64_t requests = 0, connections = 0;
  for (auto* c : copy) {
    if (c->cut_counted_) continue;  // its loss at the shutdown deadline is already counted
    // Counted here, once: force_close() wakes its coroutine, which may reach count_cut() too
    // (a body read cut by the close); without the mark the loss was counted twice.
    c->cut_counted_ = true;
    requests += c->in_flight_;
    ++connections;
  }
  bump(cut_requests, static_cast<std::int64_t>(requests));
  bump(cut_connections, static_cast<std::int64_t>(connections));
  for (auto* c : copy) c->force_close();
}

void loop::add(connection_base& c) {
  c.index_ = conns.size();
  conns.push_back(&c);
}

void loop::remove(connection_base& c) noexcept {
  auto i = c.index_;
  if (i < conns.size() && conns[i] == &c) {
    conns[i] = conns.back();
    conns[i]->index_ = i;
    conns.pop_back();
  }
}

} // namespace graceful::http::detail
