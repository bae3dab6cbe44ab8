// The server: one loop per thread (loop.hpp), each accepting on its own dup of every
// listener and owning the connections it accepted. This file is the public face: it
// validates options, starts and joins the loops, and fans adopt, shutdown, close, stats and
// describe out to them.
#include <graceful/http/server.hpp>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <graceful/http/context.hpp>

#include "http/connection_base.hpp"
#include "http/loop.hpp"
#include "http/server_state.hpp"
#include "http/tuning.hpp"

namespace graceful::http {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

// ---- context ----

asio::awaitable<bool> context::write_chunk(std::string_view data) { return sink_->write_chunk(data); }
asio::awaitable<bool> context::sleep_or_stop(std::chrono::milliseconds d) { return sink_->sleep_or_stop(d); }

// ---- options ----

std::optional<options_error> validate(const options& o) {
  auto bad = [](std::string field, std::string rule) {
    return options_error{field, "http::options::" + field + " " + rule};
  };
  if (o.threads > 1024) return bad("threads", "must be <= 1024");
  if (o.max_header_bytes < 64) return bad("max_header_bytes", "must be >= 64");
  if (o.max_connections == 0) return bad("max_connections", "must be > 0");
  if (o.linger_quiet.count() < 0) return bad("linger_quiet", "must be >= 0");
  if (o.http2_max_concurrent_streams == 0) return bad("http2_max_concurrent_streams", "must be > 0");
  if (o.http2_stream_window < 65535 || o.http2_stream_window > 0x7fffffff)
    return bad("http2_stream_window", "must be between 65535 and 2^31-1");
  return std::nullopt;
}

// ---- server ----

server::server(http::router routes, options opts) : impl_(std::make_shared<detail::server_state>()) {
  if (auto bad = validate(opts)) throw std::invalid_argument(bad->message);
  if (opts.threads == 0) opts.threads = std::max(1u, std::thread::hardware_concurrency());
  impl_->logger = opts.logger ? opts.logger : spdlog::default_logger();
  impl_->opts = std::move(opts);
  impl_->routes = std::move(routes);
  for (unsigned i = 0; i < impl_->opts.threads; ++i) {
    auto l = std::make_unique<detail::loop>(*impl_, i);
    impl_->loops.push_back(std::move(l));
  }
  for (auto& l : impl_->loops) {
    l->thread = std::thread([lp = l.get()] {
      auto name = "http-" + std::to_string(lp->index);
      pthread_setname_np(pthread_self(), name.c_str());
      // A handler's own Asio work (a post, a timer callback) that throws escapes run(): out
      // of a thread function that would be std::terminate, silently killing the process.
      // It concerns that one piece of work, so log it and go on (Asio allows run() again
      // after an exception, without restart()).
      for (;;) {
        try {
          lp->ctx->run();
          return;
        } catch (const std::exception& e) {
          lp->srv.log().error("http: loop {}: exception escaped the event loop: {}; the loop goes on", lp->index, e.what());
        } catch (...) {
          lp->srv.log().error("http: loop {}: non-std::exception escaped the event loop; the loop goes on", lp->index);
        }
      }
    });
  }
}

server::~server() {
  // close() and the stop of every loop in one post each, then the joins: the loops wind down
  // side by side, and each is woken once, not once to close and again to stop (on a loaded
  // machine every wake-up of a sleeping thread can wait a scheduler tick). A loop busy in a
  // handler gets to it when the handler returns; the join waits for that either way.
  if (impl_->state.exchange(2) != 2) impl_->notify_state();
  for (auto& l : impl_->loops) {
    l->work.reset();
    asio::post(*l->ctx, [lp = l.get()] {
      lp->begin_close();
      lp->ctx->stop();
    });
  }
  for (auto& l : impl_->loops)
    if (l->thread.joinable()) l->thread.join();
  for (auto& l : impl_->loops) {
    // Destroy sockets before their io_context; pending coroutines die with the context.
    l->listeners.clear();
    l->ctx.reset();
  }
}

http::router& server::routes() {
  if (impl_->routes_frozen.load()) throw std::logic_error("http::server::routes(): routes are fixed once serving");
  return impl_->routes;
}

result<void> server::adopt(int fd) { return adopt(fd, graceful::deadline::after(detail::adopt_wait)); }

result<void> server::adopt(int fd, graceful::deadline d) {
  if (impl_->state.load() != 0 || impl_->accepting_stopped.load()) {
    ::close(fd);
    return errc::server_closed;
  }
  int accepting = 0, type = 0, domain = 0;
  socklen_t len = sizeof(int);
  bool ok = ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting == 1;
  len = sizeof(int);
  ok = ok && ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
  len = sizeof(int);
  ok = ok && ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && (domain == AF_INET || domain == AF_INET6);
  if (!ok) {
    if (fd >= 0) ::close(fd);
    return errc::not_a_listener;
  }
  impl_->routes_frozen = true;
  // Every loop accepts on its own fd (dup) of the same socket: the kernel hands each
  // connection to one of them, and the connection stays on that loop.
  std::vector<int> fds{fd};
  for (std::size_t i = 1; i < impl_->loops.size(); ++i) {
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      std::error_code e(errno, std::system_category());
      for (int x : fds) ::close(x);
      return e;
    }
    fds.push_back(copy);
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  bool v6 = domain == AF_INET6;
  // Shared with the posted work: it may outlive this call if a loop is stuck in a handler.
  struct shared {
    std::mutex m;
    std::error_code first_error;
    std::vector<int> fds;
    bool given_up = false;  // adopt() returned timed_out: a loop that gets here later closes its fd
  };
  auto st = std::make_shared<shared>();
  st->fds = std::move(fds);
  auto all = detail::on_each_loop(*impl_, d, [st, v6](detail::loop& l) {
    int my = st->fds[l.index];
    std::error_code e;
    bool given_up = false;
    {
      std::lock_guard lk(st->m);
      given_up = st->given_up;
    }
    if (given_up) {
      ::close(my);
      return;
    }
    if (l.draining || l.srv.accepting_stopped.load()) {
      ::close(my);
      e = errc::server_closed;
    } else if (!l.add_listener(my, v6, e)) {
      ::close(my);
    }
    if (e) {
      std::lock_guard lk(st->m);
      if (!st->first_error) st->first_error = e;
    }
  });
  if (!all) {
    // Reported as not served, so it must never be: loops that got to it in time close their
    // listener, the others close their fd when they get to it (given_up).
    {
      std::lock_guard lk(st->m);
      st->given_up = true;
    }
    for (auto& l : impl_->loops) {
      boost::asio::post(*l->ctx, [lp = l.get(), st] {
        lp->close_listener_fd(st->fds[lp->index]);
      });
    }
    return std::make_error_code(std::errc::timed_out);
  }
  std::lock_guard lk(st->m);
  if (st->first_error) return st->first_error;
  return graceful::ok();
}

result<std::uint16_t> server::listen(std::string_view address) {
  if (impl_->state.load() != 0) return errc::server_closed;
  auto fd = open_listener(address, impl_->opts.backlog);
  if (!fd) return fd.error();
  auto port = local_port(fd.value());
  if (!port) {
    ::close(fd.value());
    return port.error();
  }
  if (auto r = adopt(fd.value()); !r) return r.error();
  return port.value();
}

result<void> server::serve(int listen_fd) {
  if (auto r = adopt(listen_fd); !r) return r;
  std::unique_lock lk(impl_->m);
  impl_->cv.wait(lk, [&] { return impl_->state.load() != 0; });
  return errc::server_closed;
}

result<void> server::listen_and_serve(std::string_view address) {
  if (auto r = listen(address); !r) return r.error();
  std::unique_lock lk(impl_->m);
  impl_->cv.wait(lk, [&] { return impl_->state.load() != 0; });
  return errc::server_closed;
}

result<void> server::shutdown(graceful::deadline d) {
  auto t0 = clock_type::now();
  int expected = 0;
  bool first = impl_->state.compare_exchange_strong(expected, 1);
  if (first) impl_->notify_state();
  // Posted, not waited for: a loop busy in a handler gets to it when the handler returns.
  for (auto& l : impl_->loops) asio::post(*l->ctx, [lp = l.get(), when = d.when()] { lp->begin_shutdown(when); });
  std::unique_lock lk(impl_->m);
  auto none_left = [&] { return impl_->live.load(std::memory_order_acquire) == 0; };
  bool done = true;
  if (d.is_never()) impl_->cv.wait(lk, none_left);
  else done = impl_->cv.wait_until(lk, d.when(), none_left);
  if (!done) return errc::shutdown_timeout;
  if (first) impl_->last_shutdown_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
  return graceful::ok();
}

result<void> server::stop_accepting(graceful::deadline d) {
  impl_->accepting_stopped = true;
  bool all = detail::on_each_loop(*impl_, d, [](detail::loop& l) { l.close_listeners(false); });
  if (!all) return std::make_error_code(std::errc::timed_out);
  return graceful::ok();
}

void server::close() { close(graceful::deadline::after(default_close_wait)); }

void server::close(graceful::deadline d) {
  if (impl_->state.exchange(2) != 2) impl_->notify_state();
  detail::on_each_loop(*impl_, d, [](detail::loop& l) { l.begin_close(); });
}

spdlog::logger& server::logger() const noexcept { return impl_->log(); }

server_stats server::stats() const {
  server_stats s;
  std::array<std::uint64_t, 600> codes{}, h2codes{};
  for (auto& l : impl_->loops) {
    s.accepted_connections += l->accepted.load(std::memory_order_relaxed);
    s.in_flight_requests += l->in_flight.load(std::memory_order_relaxed);
    s.cut_requests += l->cut_requests.load(std::memory_order_relaxed);
    s.cut_connections += l->cut_connections.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] += l->by_status[i].load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < h2codes.size(); ++i) h2codes[i] += l->h2_by_status[i].load(std::memory_order_relaxed);
    s.http2_connections += l->h2_accepted.load(std::memory_order_relaxed);
    s.http2_streams += l->h2_streams.load(std::memory_order_relaxed);
    s.http2_streams_refused += l->h2_refused.load(std::memory_order_relaxed);
    s.http2_streams_reset += l->h2_reset.load(std::memory_order_relaxed);
    s.http2_goaways_sent += l->h2_goaways.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (codes[i]) s.responses_by_status.emplace_back(static_cast<int>(i), codes[i]);
    if (h2codes[i]) s.http2_streams_by_status.emplace_back(static_cast<int>(i), h2codes[i]);
  }
  auto c = impl_->connections.load(std::memory_order_relaxed);
  s.open_connections = c > 0 ? static_cast<std::uint64_t>(c) : 0;
  s.shutting_down = impl_->state.load() != 0;
  s.last_shutdown_duration = std::chrono::nanoseconds(impl_->last_shutdown_ns.load());
  return s;
}

std::string server::describe(graceful::deadline d) const {
  struct shared {
    std::mutex m;
    std::vector<std::string> parts;
  };
  auto st = std::make_shared<shared>();
  st->parts.resize(impl_->loops.size());
  auto all = detail::on_each_loop(*impl_, d, [st](detail::loop& l) {
    std::string out;
    auto now = clock_type::now();
    out += "loop " + std::to_string(l.index) + ": " + std::to_string(l.conns.size()) + " connections" +
           (l.draining ? " (draining)" : "") + "\n";
    for (auto* c : l.conns) c->describe(out, now);
    std::lock_guard lk(st->m);
    st->parts[l.index] = std::move(out);
  });
  std::lock_guard lk(st->m);
  std::string out;
  for (std::size_t i = 0; i < st->parts.size(); ++i) {
    if (st->parts[i].empty()) out += "loop " + std::to_string(i) + ": busy (did not answer in time)\n";
    else out += st->parts[i];
  }
  (void)all;
  return out;
}

} // namespace graceful::http
