// echo-server: what a user with their own event loop writes to stop gracefully.
//
// The whole integration with graceful is three steps in main():
//   1. create the lifecycle first, before any thread (it owns SIGTERM/SIGINT/... from then on);
//   2. register a shutdown hook that asks the loop to stop accepting and waits, bounded by
//      the deadline it receives, until every connection has finished its echo;
//   3. run the loop on its own thread and call lc.run() in main; return its exit code.
// Zero-downtime upgrades add one more: the listening socket comes from graceful::upgrade
// (inherited on SIGHUP, created otherwise) and attach() + ready() wire SIGHUP to an upgrade.
// Everything else is an ordinary Asio echo server.
//
//   echo-server --listen 127.0.0.1:9000 --shutdown-timeout 25s --drain-delay 0s --pid-file echo.pid
#include <array>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <graceful/core/address.hpp>
#include <graceful/lifecycle/lifecycle.hpp>
#include <graceful/upgrade/upgrader.hpp>

#include "cli/service_flags.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

class server;

/// One client connection: read some bytes, write them back, repeat.
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket s, server& owner) : socket_(std::move(s)), owner_(owner) {}
  void start() { read(); }
  /// Called on the loop when the server stops: an idle connection closes now, one in the
  /// middle of an echo closes right after its write completes.
  void stop();

private:
  void read();
  void finish();

  tcp::socket socket_;
  server& owner_;
  std::array<char, 4096> buf_{};
  bool writing_ = false;
  bool stopping_ = false;
};

/// Accepts connections and knows when the last one is gone.
class server {
public:
  /// Serves `listen_fd`, a listening socket (inherited from the previous version or new),
  /// which it owns from then on.
  server(asio::io_context& io, const tcp& protocol, int listen_fd) : io_(io), acceptor_(io, protocol, listen_fd) {}

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void start() { accept(); }

  /// From any thread: stop accepting, close idle connections, let busy ones finish;
  /// returns true once every connection is closed, false if `d` passed first.
  /// With `close_idle` false (after an upgrade hand-over) connections are left to end on
  /// their own: a long-lived client stays with this process until it hangs up.
  bool shutdown(graceful::deadline d, bool close_idle = true) {
    asio::post(io_, [this, close_idle] {
      stopping_ = true;
      close_idle_ = close_idle;
      close_acceptor();
      if (close_idle)
        for (auto& s : std::set(sessions_)) s->stop();
      notify_if_idle();
    });
    std::unique_lock lk(m_);
    auto done = [&] { return idle_; };
    if (d.is_never()) cv_.wait(lk, done);
    else cv_.wait_until(lk, d.when(), done);
    return idle_;
  }

  /// From any thread: closes this process's copy of the listening socket and returns once
  /// the loop has done so (or `d` passed). Connections already accepted go on. After an
  /// upgrade the new process holds the same socket: connections queued on it are its own.
  bool stop_accepting(graceful::deadline d) {
    auto done = std::make_shared<std::promise<void>>();
    auto closed = done->get_future();
    asio::post(io_, [this, done] {
      close_acceptor();
      done->set_value();
    });
    return closed.wait_until(d.when()) == std::future_status::ready;
  }

  void add(std::shared_ptr<session> s) { sessions_.insert(std::move(s)); }
  void remove(const std::shared_ptr<session>& s) {
    sessions_.erase(s);
    notify_if_idle();
  }
  bool stopping() const { return stopping_; }

private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) {
        if (!accepting_) return;  // the acceptor was closed
        spdlog::warn("accept failed: {}", ec.message());
        return accept();
      }
      // Accepted just before the acceptor closed: the client is connected to us, serve it.
      auto sess = std::make_shared<session>(std::move(s), *this);
      add(sess);
      sess->start();
      if (stopping_ && close_idle_) sess->stop();
      if (accepting_) accept();
    });
  }
  void close_acceptor() {
    accepting_ = false;
    boost::system::error_code ec;
    acceptor_.close(ec);
  }
  void notify_if_idle() {
    if (!stopping_ || !sessions_.empty()) return;
    std::lock_guard lk(m_);
    idle_ = true;
    cv_.notify_all();
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::set<std::shared_ptr<session>> sessions_;  // touched on the loop thread only
  bool stopping_ = false;                        // loop thread only
  bool accepting_ = true;                        // loop thread only
  bool close_idle_ = true;                       // loop thread only
  std::mutex m_;
  std::condition_variable cv_;
  bool idle_ = false;  // guarded by m_
};

void session::stop() {
  stopping_ = true;
  // Bytes already received but not yet read would be answered with a reset if we closed
  // now (RFC 1122 4.2.2.13): echo them first. A byte arriving after this check can still
  // race with the close; a protocol with its own "closing" signal (HTTP's Connection:
  // close) avoids that, which is what graceful::http does.
  boost::system::error_code ec;
  if (!writing_ && socket_.available(ec) == 0) socket_.close(ec);
}

void session::read() {
  socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
    if (ec) return self->finish();
    self->writing_ = true;
    asio::async_write(self->socket_, asio::buffer(self->buf_, n),
                      [self](boost::system::error_code wec, std::size_t) {
                        self->writing_ = false;
                        if (wec || self->stopping_) return self->finish();
                        self->read();
                      });
  });
}

void session::finish() {
  boost::system::error_code ec;
  socket_.close(ec);
  owner_.remove(shared_from_this());
}

} // namespace

int main(int argc, char** argv) {
  constexpr std::string_view program = "echo-server";
  CLI::App app{"TCP echo server that stops gracefully (graceful lifecycle example)"};
  std::string listen = "127.0.0.1:9000";
  graceful::cli::service_flags flags;  // --drain-delay, --shutdown-timeout, --pid-file, ... (src/cli)
  app.add_option("--listen", listen, "address:port to listen on (port 0: any free port)")->capture_default_str();
  flags.add_to(app, {.program = std::string(program),
                     .drain_delay_help = "keep serving this long after SIGTERM before shutting down (default 0)",
                     .takeover = false});
  if (int code = graceful::cli::parse(app, argc, argv, program); code >= 0) return code;
  if (auto bad = flags.check()) return graceful::cli::bad_flag(program, *bad);
  // graceful's one address grammar (graceful/core/address.hpp); an echo server speaks TCP.
  auto at = graceful::parse_address(listen);
  if (!at) return graceful::cli::bad_flag(program, "--listen '" + listen + "': " + at.error().message());
  if (at.value().family() == AF_UNIX)
    return graceful::cli::bad_flag(program, "--listen '" + listen + "': echo-server serves TCP only");
  spdlog::set_level(flags.log_level);

  // 1. The lifecycle first: from here on, SIGTERM and friends queue for it.
  graceful::lifecycle::lifecycle lc(flags.lifecycle_options());

  // The listening socket through the upgrade layer: inherited from the process that started
  // this one on SIGHUP (or from systemd), created otherwise. The socket outlives any one
  // process, so connections queued during an upgrade are accepted, never refused.
  // (upgrade_options: a new version not ready in time gets this one's drain and shutdown time.)
  auto up = graceful::upgrade::upgrader::create(flags.upgrade_options());
  if (!up) {
    spdlog::error("cannot start: {}", up.error().message());
    return graceful::upgrade::exit_code_for(up.error());
  }
  auto fd = up.value()->listen("echo", listen);
  if (!fd) {
    spdlog::error("cannot listen on {}: {}", listen, fd.error().message());
    return graceful::upgrade::exit_code_for(fd.error());
  }
  // The family of the socket actually served: an inherited [::] socket may answer ":9000".
  auto bound = graceful::address::of_socket(fd.value().get());
  auto protocol = bound && bound.value().family() == AF_INET6 ? tcp::v6() : tcp::v4();
  asio::io_context io;
  std::unique_ptr<server> srv;
  try {
    srv = std::make_unique<server>(io, protocol, fd.value().release());
  } catch (const boost::system::system_error& e) {
    spdlog::error("cannot serve {}: {}", listen, e.code().message());
    return 1;
  }
  srv->start();
  auto local = srv->local_endpoint();
  spdlog::info("echo-server listening on {}:{}", local.address().to_string(), local.port());

  // 2. Shutdown: stop accepting, finish every echo in flight, within the deadline.
  auto on_stop = lc.on_shutdown("echo-server", [&](graceful::deadline d) {
    // After a hand-over the new process serves new clients; connections here may run until
    // they end, and are closed (idle ones at once) only shortly before the deadline.
    if (up.value()->current_state() == graceful::upgrade::state::handed_over && !d.is_never()) {
      if (srv->shutdown(graceful::deadline(d.when() - std::chrono::milliseconds(500)), false)) return;
      spdlog::info("echo-server: closing the connections still open near the deadline");
    }
    if (!srv->shutdown(d)) spdlog::warn("echo-server: connections still open at the deadline");
  });

  // 3. The loop on its own thread (it inherits the lifecycle's signal mask); main waits.
  std::thread loop([&] { io.run(); });
  // 4. Upgrades: SIGHUP starts the binary at the path this one was started from; once it
  //    serves, this process stops accepting and drains (long-lived connections stay here
  //    until they end or the shutdown deadline). ready() writes the pid file and tells the
  //    parent, if any, that this process serves.
  //    Accepting stops the moment the new process is ready, not when this one's drain hooks
  //    are done: from then on every new client is the new process's.
  auto on_upgrade = up.value()->attach(lc, {.stop_accepting = [&] {
    if (!srv->stop_accepting(graceful::deadline::after(std::chrono::seconds(1))))
      spdlog::warn("echo-server: the loop did not close the acceptor within 1s");
  }});
  (void)up.value()->ready();
  int code = lc.run();
  io.stop();
  loop.join();
  return code;
}
