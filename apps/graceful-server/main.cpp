// graceful-server: an HTTP/1.1 server whose restarts lose no request.
//
// Start-up, in order (each step one function below):
//   1. parse_flags      bad flags -> message on stderr, exit 2
//   2. lifecycle        created before any thread, so every thread inherits its signal mask
//   3. open_listeners   THE LISTENER SEAM: the sockets to serve, through graceful::upgrade:
//                       inherited from the process that started this one (SIGHUP upgrade),
//                       from --takeover PATH, or from systemd; made from --listen otherwise.
//                       Without --listen, every inherited socket is served: under socket
//                       activation the .socket unit or graceful-run decides the addresses.
//   4. server + attach  routes, event loops, shutdown hook, dump section, /healthz, /readyz
//   5. upgrader         SIGHUP upgrades; ready() writes the pid file and tells the parent
//                       (or systemd) that this process serves
//   6. lifecycle.run()  serves until SIGTERM/SIGINT or a hand-over, then drains and exits
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <graceful/core/errc.hpp>
#include <graceful/http/attach.hpp>
#include <graceful/http/server.hpp>
#include <graceful/lifecycle/lifecycle.hpp>
#include <graceful/upgrade/upgrader.hpp>

#include "cli/service_flags.hpp"
#include "routes.hpp"

namespace {

namespace http = graceful::http;

struct config {
  graceful::cli::service_flags service;  // --drain-delay, --shutdown-timeout, --pid-file, ... (src/cli)
  std::vector<std::string> listen{"127.0.0.1:8080"};
  bool listen_given = false;    // --listen on the command line: inherited sockets must match it
  unsigned threads = 0;         // --threads, default 0: one event loop per core
  std::chrono::milliseconds linger_timeout{1000};  // http::options::linger_timeout's default
  bool http2 = true;            // --http2=on|off
};

/// Fills `cfg`; returns -1 to go on, or the exit code (0 after --help/--version, 2 on errors).
int parse_flags(int argc, char** argv, config& cfg) {
  constexpr std::string_view program = "graceful-server";
  CLI::App app{"graceful-server: an HTTP/1.1 and HTTP/2 server that drains, restarts and upgrades without losing a request"};
  app.set_version_flag("--version", std::string("graceful-server ") + GRACEFUL_VERSION);
  std::string linger = "1s";
  std::vector<std::string> listen;
  std::string http2 = "on";
  app.add_option("--listen", listen, "ADDR:PORT to listen on (repeatable; default: every socket inherited by socket activation, "
                 "else 127.0.0.1:8080)");
  app.add_option("--threads", cfg.threads, "event loops; 0 = one per core (default 0)");
  cfg.service.add_to(app, {.program = std::string(program),
                           .drain_delay_help = "keep serving this long with /readyz 503 before shutting down (default 0)"});
  app.add_option("--linger-timeout", linger,
                 "after a connection's last response, how long at most to drain what the client still sends "
                 "(default 1s; it ends much sooner once the client has the whole response)");
  app.add_option("--http2", http2,
                 "on: HTTP/2 over cleartext (prior knowledge, Upgrade: h2c) beside HTTP/1.1 on every listener; "
                 "off: HTTP/1.1 only (default on)");
  if (int code = graceful::cli::parse(app, argc, argv, program); code >= 0) return code;
  if (auto bad = cfg.service.check()) return graceful::cli::bad_flag(program, *bad);
  auto l = graceful::cli::duration_flag(linger, false);
  if (!l) return graceful::cli::bad_flag(program, "--linger-timeout: not a duration: '" + linger + "' (try 250ms, 5s)");
  cfg.linger_timeout = *l;
  if (!listen.empty()) {
    cfg.listen = listen;
    cfg.listen_given = true;
  }
  if (cfg.threads > 1024) return graceful::cli::bad_flag(program, "--threads: at most 1024");
  if (http2 != "on" && http2 != "off") return graceful::cli::bad_flag(program, "--http2: 'on' or 'off', not '" + http2 + "'");
  cfg.http2 = http2 == "on";
  return -1;
}

/// Lets the process hold as many connections as the hard limit allows (Go does the same):
/// the default soft limit of 1024 fds would cap an idle keep-alive crowd far too early.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/// A listening socket and the address it was asked for.
struct listener {
  std::string address;
  graceful::upgrade::unique_fd fd;
};

/// The name a --listen socket travels under between versions: "http" for the first (the name
/// the systemd socket unit gives it), "http-2", "http-3"... for the others, so a new version
/// with the same flags finds each socket where the old one had it.
std::string listener_name(std::size_t i) { return i == 0 ? "http" : "http-" + std::to_string(i + 1); }

/// THE LISTENER SEAM: every listening socket this process serves, inherited when the upgrader
/// holds one by that name (SIGHUP upgrade, --takeover, systemd), made from --listen otherwise.
/// With no --listen, all inherited sockets, whatever their names and addresses: a systemd
/// .socket unit or `graceful-run --listen` alone defines where a socket-activated server
/// listens (and a version upgraded from it inherits the same set).
graceful::result<std::vector<listener>> open_listeners(const config& cfg, graceful::upgrade::upgrader& up) {
  std::vector<listener> out;
  if (!cfg.listen_given) {
    auto inherited = up.listen_inherited();
    if (!inherited) {
      spdlog::error("cannot serve the inherited sockets: {}", inherited.error().message());
      return inherited.error();
    }
    for (auto& l : inherited.value())
      out.push_back({graceful::upgrade::local_address(l.fd.get()), std::move(l.fd)});
    if (!out.empty()) return out;
  }
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    auto& a = cfg.listen[i];
    auto fd = up.listen(listener_name(i), a);
    if (!fd) {
      spdlog::error("cannot listen on {}: {}", a, fd.error().message());
      return fd.error();
    }
    out.push_back({a, std::move(fd.value())});
  }
  return out;
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  if (int code = parse_flags(argc, argv, cfg); code >= 0) return code;
  spdlog::set_level(cfg.service.log_level);
  raise_fd_limit();

  graceful::lifecycle::lifecycle lc(cfg.service.lifecycle_options());
  auto uo = cfg.service.upgrade_options();
  auto up = graceful::upgrade::upgrader::create(uo);
  if (!up) {
    spdlog::error("cannot start: {}", up.error().message());
    return graceful::upgrade::exit_code_for(up.error());  // 2: forged/mismatched LISTEN_*, ...
  }
  auto listeners = open_listeners(cfg, *up.value());
  if (!listeners) {
    auto ec = listeners.error();
    // A bad --listen is a bad flag; an inherited socket that does not fit is bad configuration.
    return ec == http::errc::bad_address ? 2 : graceful::upgrade::exit_code_for(ec);
  }

  graceful_server::app app{lc};
  http::options so;
  so.threads = cfg.threads;
  so.linger_timeout = cfg.linger_timeout;
  so.http2 = cfg.http2;
  http::server server(graceful_server::make_routes(app), so);
  app.server = &server;
  auto http_reg = http::attach(server, lc);

  for (auto& l : listeners.value()) {
    auto port = http::local_port(l.fd.get());
    if (auto r = server.adopt(l.fd.release()); !r) {
      spdlog::error("cannot serve {}: {}", l.address, r.error().message());
      return 1;
    }
    spdlog::info("listening on {} (port {})", l.address, port ? port.value() : 0);
  }
  // SIGHUP upgrades from here on; a completed hand-over stops this process (no drain delay).
  // Accepting stops the moment the new process is ready, not after this one's drain hooks:
  // from then on every new client is the new process's (it holds the same sockets).
  auto upgrade_reg = up.value()->attach(lc, {.stop_accepting = [&server] {
    if (auto r = server.stop_accepting(graceful::deadline::after(std::chrono::seconds(1))); !r)
      spdlog::warn("http: stop accepting: {} (a loop is busy in a handler; it closes its listeners after it)",
                   r.error().message());
  }});
  (void)up.value()->ready();  // pid file, takeover socket, "ready" to the parent or systemd
  // The upgrader removes the pid file on the way out if it is still ours. A stop whose
  // deadline cut requests or connections exits 1 (deadline_exit_code), not 0.
  return http_reg.exit_code(lc.run());
}
