#pragma once
// Test and bench support: a TCP proxy on 127.0.0.1 that adds a one-way delay in each
// direction, because this machine's kernel has no netem (tc qdisc ... netem delay). Loopback
// delivers a FIN the moment it is sent, which hides the races a real network has: a request
// already on the wire while the server closes the connection.
//
// Per connection, what one side sends reaches the other `delay` later, in order: bytes, then
// a FIN (shutdown of the sending side) or a RST (passed on as a RST: SO_LINGER 0 close).
// Bandwidth is not limited unless `window` is set: then each direction holds at most that many
// bytes in flight (read and not yet passed on) and reads from a socket whose receive buffer is
// about as small, so a sender meets back-pressure as behind a slow link (bandwidth ~ window /
// delay) and its own send queue fills. The connect itself: the client's connect() completes at once (the
// proxy accepts); the proxy connects upstream `delay` later (the SYN's trip); if that connect
// is refused, the client gets a RST another `delay` later — where a real path would have made
// the client's own connect() fail with ECONNREFUSED.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

namespace graceful::test {

/// How a delay_proxy is set up.
struct delay_proxy_options {
  int upstream_port = 0;                            ///< forwards to 127.0.0.1:upstream_port (required)
  int listen_port = 0;                              ///< 0: any free port (port() tells which)
  std::chrono::microseconds delay{20'000};          ///< one-way, applied in each direction (20 ms)
  /// Bytes in flight per direction at most; 0 (default): unlimited, the proxy reads whatever
  /// arrives. 16 KiB with 20 ms is a ~800 KB/s path: data a server has written may still sit
  /// in its send queue when it closes, where a RST (close with unread input) destroys it.
  std::size_t window = 0;
};

/// The proxy: one accept thread, two threads per proxied connection (one per direction).
/// The destructor stops it: the listener closes, live connections are reset, threads joined.
class delay_proxy {
public:
  explicit delay_proxy(delay_proxy_options o);
  ~delay_proxy();
  delay_proxy(const delay_proxy&) = delete;
  delay_proxy& operator=(const delay_proxy&) = delete;

  /// True when it listens; error() says why not.
  bool ok() const noexcept { return listen_fd_ >= 0; }
  std::error_code error() const noexcept { return error_; }
  /// The port clients connect to.
  int port() const noexcept { return port_; }
  /// Connections accepted so far.
  std::uint64_t accepted() const noexcept { return accepted_.load(); }
  /// Stops as the destructor does (idempotent).
  void stop();

  struct session;

private:
  void accept_loop();
  void reap(bool all);

  delay_proxy_options o_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  ///< eventfd: readable once stop() ran
  int port_ = 0;
  std::error_code error_;
  std::atomic<std::uint64_t> accepted_{0};
  std::mutex mu_;
  std::list<std::unique_ptr<session>> sessions_;
  std::thread acceptor_;
};

} // namespace graceful::test
