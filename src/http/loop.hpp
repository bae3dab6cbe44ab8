#pragma once
// One event loop: an io_context on its own thread, its copy of every listener with the
// accept loop, and the connections it accepted. A request never leaves its loop's thread,
// so the request path takes no lock; the server posts cross-thread calls to each loop.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <graceful/core/deadline.hpp>

#include "http/response_writer.hpp"
#include "http/server_state.hpp"

namespace graceful::http::detail {

class connection_base;
class http1_idle;

struct listener {
  boost::asio::ip::tcp::acceptor acceptor;
  boost::asio::steady_timer pause;  // EMFILE back-off and max_connections pause
  bool nodelay = false;              // TCP_NODELAY set on the listener: accepted sockets inherit it
  explicit listener(boost::asio::io_context& ctx) : acceptor(ctx), pause(ctx) {}
};

struct loop {
  server_state& srv;
  unsigned index;
  std::unique_ptr<boost::asio::io_context> ctx = std::make_unique<boost::asio::io_context>(1);
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work{ctx->get_executor()};
  std::thread thread;
  std::vector<std::unique_ptr<listener>> listeners;
  std::vector<connection_base*> conns;  // only touched on this loop's thread
  /// The idle HTTP/1.1 connections (http1_connection.hpp): a service of ctx, dies with it.
  http1_idle* http1 = nullptr;
  std::stop_source stop;
  std::stop_token stop_token = stop.get_token();
  bool draining = false;  // shutdown or close began (loop thread only)
  bool closing = false;   // close began (loop thread only)
  /// The first shutdown()'s deadline (max: none, or never): reading a request body and
  /// writing a response end by it, so a slow client cannot hold the drain past it.
  std::chrono::steady_clock::time_point shutdown_deadline = std::chrono::steady_clock::time_point::max();
  std::array<std::atomic<std::uint64_t>, 600> by_status{};
  std::atomic<std::uint64_t> in_flight{0};
  std::atomic<std::uint64_t> accepted{0};
  /// What close() cut on this loop: requests in flight and connections still open.
  std::atomic<std::uint64_t> cut_requests{0};
  std::atomic<std::uint64_t> cut_connections{0};
  // HTTP/2 (h2_connection.cpp); its responses count in by_status too.
  std::array<std::atomic<std::uint64_t>, 600> h2_by_status{};
  std::atomic<std::uint64_t> h2_accepted{0}, h2_streams{0}, h2_refused{0}, h2_reset{0}, h2_goaways{0};
  std::time_t date_sec = 0;
  char date_buf[64] = {};
  std::size_t date_len = 0;
  std::string ok_head_;  // stamp().ok_head: a 200's first lines, rebuilt with date_buf
  std::chrono::steady_clock::time_point last_accept_log{};

  loop(server_state& s, unsigned i) : srv(s), index(i) {}

  /// The Date header value, formatted once per second (RFC 9110 5.6.7 IMF-fixdate), with
  /// the 200 head stamp() hands out.
  std::string_view date();
  /// The Date value and the start of a 200 response's head (status line, Server when
  /// options::server_name is set, Date), formatted once per second: most responses are 200s,
  /// and one copy of that start replaces five appends and a number's formatting per response
  /// (response_writer::head).
  head_stamp stamp();
  /// Counts one response sent with `status` (server_stats::responses_by_status).
  void count_status(int status) noexcept {
    if (status >= 100 && status < 600) bump(by_status[static_cast<std::size_t>(status)]);
  }
  /// Counts one HTTP/2 stream answered with `status` (server_stats::http2_streams_by_status).
  void count_h2_status(int status) noexcept {
    if (status >= 100 && status < 600) bump(h2_by_status[static_cast<std::size_t>(status)]);
  }

  /// Starts accepting on `fd` (a listening socket of `v6`/v4 family); false with `ec` set.
  bool add_listener(int fd, bool v6, std::error_code& ec);
  /// Closes the listener that accepts on `fd` if this loop has one (a timed-out adopt()).
  void close_listener_fd(int fd);
  /// Shutdown began (to end by `deadline`): accept what is queued, close listeners, tell
  /// every connection.
  void begin_shutdown(std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());
  /// Closes every listener of this loop; with `take_queued`, first accepts (and serves) the
  /// connections already waiting in the kernel's accept queue.
  void close_listeners(bool take_queued);
  /// close(): begin_shutdown, then cut every connection.
  void begin_close();

private:
  friend class connection_base;
  void accept_queued(listener& li);
  void add(connection_base& c);
  void remove(connection_base& c) noexcept;
};

/// Runs `f(loop&)` on every loop's thread and waits for all, at most until `d`.
/// Returns false when some loop did not get to it in time.
template <class F> bool on_each_loop(server_state& srv, graceful::deadline d, F f) {
  struct shared {
    std::mutex m;
    std::condition_variable cv;
    std::size_t left;
  };
  auto st = std::make_shared<shared>();
  st->left = srv.loops.size();
  for (auto& lp : srv.loops) {
    boost::asio::post(*lp->ctx, [st, f, l = lp.get()]() mutable {
      f(*l);
      std::lock_guard lk(st->m);
      if (--st->left == 0) st->cv.notify_all();
    });
  }
  std::unique_lock lk(st->m);
  if (d.is_never()) {
    st->cv.wait(lk, [&] { return st->left == 0; });
    return true;
  }
  return st->cv.wait_until(lk, d.when(), [&] { return st->left == 0; });
}

} // namespace graceful::http::detail
