#include <graceful/grpc/acceptor.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <graceful/upgrade/listeners.hpp>

namespace graceful::grpc {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct acceptor::impl {
  acceptor_options opts;
  std::unique_ptr<::grpc::experimental::ExternalConnectionAcceptor> sink;
  upgrade::unique_fd wake;  // eventfd: stop() and serve() wake the poll

  mutable std::mutex m;
  std::vector<upgrade::unique_fd> listeners;  // guarded by m; read by the thread under m
  std::vector<std::string> addresses;         // guarded by m
  bool stopping = false;                      // guarded by m
  std::thread thread;                         // started by the first serve()
  std::atomic<bool> stopped{false};

  // Connections handed to gRPC, as (fd, inode): once gRPC closes one, its number either names
  // nothing or another file, so "still open" is fstat(fd).st_ino == inode. Guarded by m.
  mutable std::vector<std::pair<int, ino_t>> handed;
  mutable std::size_t prune_at = 64;

  std::atomic<std::uint64_t> accepted{0}, resource_errors{0}, other_errors{0};
  clock_type::time_point last_log{};

  spdlog::logger& log() const { return opts.logger ? *opts.logger : *spdlog::default_logger_raw(); }

  void poke() const noexcept {
    std::uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the thread wakes anyway.
    [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
  }

  /// Drops the connections gRPC has closed; returns how many are left. Needs m.
  std::size_t prune_locked() const {
    std::erase_if(handed, [](const std::pair<int, ino_t>& h) {
      struct stat st{};
      return ::fstat(h.first, &st) != 0 || st.st_ino != h.second;
    });
    return handed.size();
  }

  static bool is_resource_exhaustion(int e) noexcept {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
  }

  /// Accepts what is queued on `lfd` (at most a batch, so one busy listener cannot starve
  /// the others or a stop). Returns the errno of a resource exhaustion, else 0.
  int accept_some(int lfd) {
    for (int i = 0; i < 64; ++i) {
      // Non-blocking and close-on-exec as gRPC's own listener makes them: gRPC's endpoint
      // expects a non-blocking fd, and an upgrade's new process must not inherit clients.
      int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        int e = errno;
        if (e == EAGAIN || e == EWOULDBLOCK) return 0;
        if (e == EINTR) continue;
        if (is_resource_exhaustion(e)) return e;
        // ECONNABORTED, EPROTO, EPERM (firewall) ...: that client is gone; go on.
        other_errors.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (opts.no_delay) {
        int on = 1;
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // fails on UNIX sockets: fine
      }
      struct stat st{};
      ino_t ino = ::fstat(fd, &st) == 0 ? st.st_ino : 0;
      {
        std::lock_guard lk(m);
        handed.emplace_back(fd, ino);
        if (handed.size() >= prune_at) {
          prune_locked();
          prune_at = std::max<std::size_t>(64, handed.size() * 2);
        }
      }
      ::grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters p;
      p.listener_fd = lfd;
      p.fd = fd;  // gRPC owns it from here (it closes it itself if getpeername fails)
      // Counted first: the connection may serve a call before HandleNewConnection returns.
      accepted.fetch_add(1, std::memory_order_relaxed);
      sink->HandleNewConnection(&p);
    }
    return 0;
  }

  void run() {
    std::chrono::milliseconds backoff{0};
    std::vector<pollfd> pfds;
    for (;;) {
      pfds.clear();
      pfds.push_back({wake.get(), POLLIN, 0});
      {
        std::lock_guard lk(m);
        if (stopping) return;
        // While backing off, only a stop may wake us: the listeners stay readable and would spin.
        if (backoff.count() == 0)
          for (auto& l : listeners) pfds.push_back({l.get(), POLLIN, 0});
      }
      int timeout = backoff.count() == 0 ? -1 : static_cast<int>(backoff.count());
      int n = ::poll(pfds.data(), pfds.size(), timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        log().error("grpc: acceptor: poll: {}; retrying in 100 ms", std::strerror(errno));
        backoff = 100ms;
        continue;
      }
      if (pfds[0].revents & POLLIN) {
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(wake.get(), &v, sizeof v);
        continue;  // re-check stopping and pick up new listeners
      }
      if (backoff.count() != 0) {
        // Back-off over: try every listener once more.
        int e = accept_all();
        backoff = e ? on_exhaustion(e, backoff) : 0ms;
        continue;
      }
      for (std::size_t i = 1; i < pfds.size(); ++i) {
        if (!pfds[i].revents) continue;
        if (int e = accept_some(pfds[i].fd)) {
          backoff = on_exhaustion(e, backoff);
          break;
        }
      }
    }
  }

  /// accept_some on every listener; stops at the first resource exhaustion (its errno).
  int accept_all() {
    for (std::size_t i = 0;; ++i) {
      int lfd;
      {
        std::lock_guard lk(m);
        if (stopping || i >= listeners.size()) return 0;
        lfd = listeners[i].get();
      }
      if (int e = accept_some(lfd)) return e;
    }
  }

  std::chrono::milliseconds on_exhaustion(int e, std::chrono::milliseconds backoff) {
    // EMFILE/ENFILE: the connection stays queued in the kernel and poll keeps reporting the
    // listener readable, so retrying at once would spin. 5 ms doubling, as Go does.
    resource_errors.fetch_add(1, std::memory_order_relaxed);
    backoff = backoff.count() == 0 ? 5ms : std::min(backoff * 2, opts.max_backoff);
    auto now = clock_type::now();
    if (now - last_log >= 1s) {
      last_log = now;
      log().warn("grpc: accept: {}; retrying in {} ms", std::strerror(e), backoff.count());
    }
    return backoff;
  }
};

std::unique_ptr<acceptor> acceptor::add_to(::grpc::ServerBuilder& builder,
                                           std::shared_ptr<::grpc::ServerCredentials> creds, acceptor_options o) {
  if (!creds) creds = ::grpc::InsecureServerCredentials();
  if (o.max_backoff.count() <= 0) o.max_backoff = 1ms;
  auto i = std::make_unique<impl>();
  i->opts = std::move(o);
  if (i->opts.max_connection_age.count() > 0) {
    auto age = std::min<long long>(i->opts.max_connection_age.count(), INT_MAX);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, static_cast<int>(age));
  }
  i->sink = builder.experimental().AddExternalConnectionAcceptor(
      ::grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD, std::move(creds));
  i->wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!i->wake) throw std::system_error(errno, std::generic_category(), "graceful::grpc::acceptor: eventfd");
  return std::unique_ptr<acceptor>(new acceptor(std::move(i)));
}

acceptor::acceptor(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

acceptor::~acceptor() { stop(); }

result<void> acceptor::serve(upgrade::unique_fd listen_fd) {
  int accepting = 0, type = 0;
  socklen_t len = sizeof accepting, tlen = sizeof type;
  if (::getsockopt(listen_fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting ||
      ::getsockopt(listen_fd.get(), SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM)
    return errc::not_a_listener;
  // The poll needs it non-blocking: another process may accept the same connection first.
  int fl = ::fcntl(listen_fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(listen_fd.get(), F_SETFL, fl | O_NONBLOCK) != 0)
    return std::error_code(errno, std::generic_category());
  auto& I = *impl_;
  std::lock_guard lk(I.m);
  if (I.stopping) return errc::acceptor_stopped;
  I.addresses.push_back(upgrade::local_address(listen_fd.get()));
  I.listeners.push_back(std::move(listen_fd));
  if (!I.thread.joinable()) {
    try {
      I.thread = std::thread([&I] { I.run(); });
    } catch (const std::system_error& e) {
      I.listeners.pop_back();
      I.addresses.pop_back();
      return e.code();
    }
  } else {
    I.poke();
  }
  return ok();
}

void acceptor::stop() {
  auto& I = *impl_;
  std::thread t;
  {
    std::lock_guard lk(I.m);
    if (I.stopping && !I.thread.joinable()) return;
    I.stopping = true;
    t = std::move(I.thread);
  }
  I.stopped.store(true);
  I.poke();
  if (t.joinable()) t.join();
  std::lock_guard lk(I.m);
  // Close, never shutdown(2): the socket is shared with the next process, which keeps accepting.
  I.listeners.clear();
}

std::size_t acceptor::wait_connections_closed(graceful::deadline d) const {
  for (;;) {
    std::size_t left;
    {
      std::lock_guard lk(impl_->m);
      left = impl_->prune_locked();
    }
    if (left == 0 || d.expired()) return left;
    std::this_thread::sleep_for(std::min<clock_type::duration>(20ms, d.remaining()));
  }
}

const acceptor_options& acceptor::options() const noexcept { return impl_->opts; }

bool acceptor::stopped() const noexcept { return impl_->stopped.load(); }

acceptor_stats acceptor::stats() const {
  auto& I = *impl_;
  acceptor_stats s;
  s.accepted = I.accepted.load(std::memory_order_relaxed);
  s.resource_errors = I.resource_errors.load(std::memory_order_relaxed);
  s.other_errors = I.other_errors.load(std::memory_order_relaxed);
  std::lock_guard lk(I.m);
  s.listeners = I.listeners.size();
  s.open_connections = I.prune_locked();
  return s;
}

std::string acceptor::describe() const {
  auto s = stats();
  std::string addrs;
  {
    std::lock_guard lk(impl_->m);
    for (auto& a : impl_->addresses) addrs += (addrs.empty() ? "" : ", ") + a;
  }
  return fmt::format("grpc acceptor: {} ({} listening): {} accepted, {} accept failures for lack of fds/memory, "
                     "{} other accept failures, {} connections open{}",
                     addrs.empty() ? "no listener" : addrs, s.listeners, s.accepted, s.resource_errors,
                     s.other_errors, s.open_connections, stopped() ? "; stopped" : "");
}

} // namespace graceful::grpc
