#include "delay_proxy.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <string>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace graceful::test {

namespace {

using steady = std::chrono::steady_clock;

/// Makes close(fd) send a RST instead of a FIN (tcp(7): SO_LINGER with a zero timeout).
void arm_reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

/// Keeps the kernel from absorbing what the proxy does not read: without it, loopback's
/// autotuned receive buffer (megabytes) would take a whole response at once. The kernel
/// doubles the value for its bookkeeping (socket(7)), so half of `bytes` is asked for.
void limit_receive_buffer(int fd, std::size_t bytes) {
  const int v = static_cast<int>(std::max<std::size_t>(bytes / 2, 1024));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
}

/// poll() until `until` (or forever when `until` is max), with microsecond precision.
int poll_until(pollfd* fds, nfds_t n, steady::time_point until) {
  for (;;) {
    timespec ts{};
    timespec* tp = nullptr;
    if (until != steady::time_point::max()) {
      const auto left = std::max(steady::duration::zero(), until - steady::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      tp = &ts;
    }
    const int r = ::ppoll(fds, n, tp, nullptr);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

/// What one direction has read and not yet passed on.
struct item {
  enum kind_t { data, fin, rst } kind;
  steady::time_point due;
  std::string bytes;
};

} // namespace

/// One proxied connection: `client` (accepted) and `upstream` (connected `delay` later).
/// The client->upstream thread owns the session: it connects upstream, starts the other
/// direction, and closes both sockets once both directions are done.
struct delay_proxy::session {
  int client = -1;
  int upstream = -1;
  int abort_fd = -1;  ///< eventfd: readable once either side was reset, or on stop
  steady::time_point accepted_at;
  std::chrono::microseconds delay{};
  std::size_t window = 0;  ///< bytes in flight per direction at most; 0: unlimited
  std::thread owner;
  std::atomic<bool> done{false};
  std::atomic<bool> reset_on_close{false};  ///< set by stop(): end with RSTs, nothing half-open

  ~session() {
    if (owner.joinable()) owner.join();
    if (abort_fd >= 0) ::close(abort_fd);
  }

  void abort() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(abort_fd, &one, sizeof one);
  }

  /// Sends all of `bytes` to `fd`; false if the peer is gone or the session aborted.
  bool send_all(int fd, const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p[2] = {{fd, POLLOUT, 0}, {abort_fd, POLLIN, 0}};
        poll_until(p, 2, steady::time_point::max());
        if (p[1].revents & POLLIN) return false;
        continue;
      }
      return false;
    }
    return true;
  }

  /// Passes everything `src` sends on to `dst`, each piece `delay` after it was read.
  /// `connect_first` (client->upstream only): the upstream connect is due at accept + delay.
  /// Returns when a FIN was passed on, or on a reset/abort.
  void pump(int src, int& dst, bool connect_first) {
    std::deque<item> q;
    std::size_t queued = 0;  // data bytes in q
    bool src_done = false;
    bool dst_broken = false;
    char buf[64 * 1024];
    for (;;) {
      const auto due = connect_first ? accepted_at + delay : q.empty() ? steady::time_point::max() : q.front().due;
      // A full window stops reading: the sender's kernel buffers fill, as behind a slow link.
      const bool can_read = !src_done && (window == 0 || queued < window);
      pollfd p[2] = {{abort_fd, POLLIN, 0}, {src, POLLIN, 0}};
      const nfds_t n = can_read ? 2 : 1;
      if (src_done && due == steady::time_point::max()) return;
      poll_until(p, n, due);
      if (p[0].revents & POLLIN) return;
      if (n == 2 && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
        const std::size_t want = window == 0 ? sizeof buf : std::min(sizeof buf, window - queued);
        const ssize_t r = ::recv(src, buf, want, MSG_DONTWAIT);
        const auto t = steady::now() + delay;
        if (r > 0) {
          q.push_back({item::data, t, std::string(buf, static_cast<std::size_t>(r))});
          queued += static_cast<std::size_t>(r);
        }
        else if (r == 0) q.push_back({item::fin, t, {}}), src_done = true;
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
          q.push_back({item::rst, t, {}}), src_done = true;
      }
      const auto now = steady::now();
      if (connect_first && now >= accepted_at + delay) {
        connect_first = false;
        if (!connect_upstream()) {
          // Refused: the client learns it one more trip later, as a RST.
          pollfd a{abort_fd, POLLIN, 0};
          poll_until(&a, 1, steady::now() + delay);
          arm_reset(client);
          abort();
          return;
        }
      }
      while (!connect_first && !q.empty() && q.front().due <= now) {
        item it = std::move(q.front());
        q.pop_front();
        if (it.kind == item::data) {
          queued -= it.bytes.size();
          if (!dst_broken && !send_all(dst, it.bytes)) dst_broken = true;
        } else if (it.kind == item::fin) {
          ::shutdown(dst, SHUT_WR);
          return;
        } else {
          arm_reset(dst);
          abort();
          return;
        }
      }
    }
  }

  bool connect_upstream();
  int upstream_port = 0;

  void run() {
    pump(client, upstream, true);
    // pump returned: FIN passed on, reset or abort. The other direction still runs (or
    // never started when the upstream connect failed).
    if (reverse.joinable()) reverse.join();
    if (reset_on_close) {
      arm_reset(client);
      if (upstream >= 0) arm_reset(upstream);
    }
    ::close(client);
    if (upstream >= 0) ::close(upstream);
    done = true;
  }
  std::thread reverse;
};

bool delay_proxy::session::connect_upstream() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  if (window > 0) limit_receive_buffer(fd, window);  // before connect: it sets the window scale
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(upstream_port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return false;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_nonblocking(fd);
  upstream = fd;
  reverse = std::thread([this] { pump(upstream, client, false); });
  return true;
}

delay_proxy::delay_proxy(delay_proxy_options o) : o_(o) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (o.window > 0) limit_receive_buffer(fd, o.window);  // accepted sockets inherit it
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(o.listen_port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || stop_fd_ < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd, 4096) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    error_ = std::error_code(errno, std::system_category());
    if (fd >= 0) ::close(fd);
    return;
  }
  listen_fd_ = fd;
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

delay_proxy::~delay_proxy() {
  stop();
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void delay_proxy::stop() {
  if (!acceptor_.joinable()) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
  acceptor_.join();
  ::close(listen_fd_);
  listen_fd_ = -1;
  {
    std::lock_guard lk(mu_);
    for (auto& s : sessions_) {
      // Live connections end with a RST: nothing is left half-open behind the test.
      s->reset_on_close = true;
      s->abort();
    }
  }
  reap(true);
}

void delay_proxy::reap(bool all) {
  std::list<std::unique_ptr<session>> finished;
  {
    std::lock_guard lk(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (all || (*it)->done) finished.splice(finished.end(), sessions_, it++);
      else ++it;
    }
  }
  finished.clear();  // joins
}

void delay_proxy::accept_loop() {
  for (;;) {
    pollfd p[2] = {{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    poll_until(p, 2, steady::time_point::max());
    if (p[0].revents & POLLIN) return;
    const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) continue;
    const int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto s = std::make_unique<session>();
    s->client = c;
    s->abort_fd = ::eventfd(0, EFD_CLOEXEC);
    s->accepted_at = steady::now();
    s->delay = o_.delay;
    s->window = o_.window;
    s->upstream_port = o_.upstream_port;
    session* raw = s.get();
    ++accepted_;
    {
      std::lock_guard lk(mu_);
      sessions_.push_back(std::move(s));
    }
    raw->owner = std::thread([raw] { raw->run(); });
    reap(false);
  }
}

} // namespace graceful::test
