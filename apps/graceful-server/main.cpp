// graceful-server: an HTTP/1.1 server whose restarts lose no request.
//
// Start-up, in order (each step one function below):
//   1. parse_flags      bad flags -> message on stderr, exit 2
//   2. lifecycle        created before any thread, so every thread inherits its signal mask
//   3. open_listeners   THE LISTENER SEAM: the sockets to serve. Today they are made from
//                       --listen; the upgrade layer replaces this step with inherited sockets
//                       (--upgrade-timeout, --takeover, --takeover-socket, SIGHUP).
//   4. server + attach  routes, event loops, shutdown hook, dump section, /healthz, /readyz
//   5. lifecycle.run()  serves until SIGTERM/SIGINT, then drains and exits with its code
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <graceful/core/duration.hpp>
#include <graceful/http/attach.hpp>
#include <graceful/http/server.hpp>
#include <graceful/lifecycle/lifecycle.hpp>

#include "routes.hpp"

namespace {

namespace http = graceful::http;

struct config {
  std::vector<std::string> listen{"127.0.0.1:8080"};
  unsigned threads = 0;
  std::chrono::milliseconds drain_delay{0};
  std::chrono::milliseconds shutdown_timeout{25'000};
  std::string pid_file;
  std::string diag_dir;
  std::string log_level = "info";
};

/// Fills `cfg`; returns -1 to go on, or the exit code (0 after --help/--version, 2 on errors).
int parse_flags(int argc, char** argv, config& cfg) {
  CLI::App app{"graceful-server: an HTTP/1.1 server that drains, restarts and upgrades without losing a request"};
  app.set_version_flag("--version", std::string("graceful-server ") + GRACEFUL_VERSION);
  std::string drain = "0", timeout = "25s";
  std::vector<std::string> listen;
  app.add_option("--listen", listen, "ADDR:PORT to listen on (repeatable; default 127.0.0.1:8080)");
  app.add_option("--threads", cfg.threads, "event loops; 0 = one per core (default 0)");
  app.add_option("--drain-delay", drain, "keep serving this long with /readyz 503 before shutting down (default 0)");
  app.add_option("--shutdown-timeout", timeout, "budget for the whole stop after the drain delay (default 25s)");
  app.add_option("--pid-file", cfg.pid_file, "write the process id here");
  app.add_option("--diag-dir", cfg.diag_dir, "where SIGUSR1 dumps and SIGUSR2 profiles go (default: temp dir)");
  app.add_option("--log-level", cfg.log_level, "trace, debug, info, warn, error, critical or off (default info)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "graceful-server: %s\nRun with --help for usage.\n", e.what());
    return 2;
  }
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "graceful-server: %s\n", msg.c_str());
    return 2;
  };
  auto d = graceful::parse_duration(drain);
  if (!d) return fail("--drain-delay: not a duration: '" + drain + "' (try 250ms, 5s)");
  cfg.drain_delay = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  auto t = graceful::parse_duration(timeout);
  if (!t) return fail("--shutdown-timeout: not a duration: '" + timeout + "' (try 250ms, 5s)");
  cfg.shutdown_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
  if (!listen.empty()) cfg.listen = listen;
  if (cfg.threads > 1024) return fail("--threads: at most 1024");
  if (spdlog::level::from_str(cfg.log_level) == spdlog::level::off && cfg.log_level != "off")
    return fail("--log-level: unknown level '" + cfg.log_level + "'");
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
  int fd;
};

/// THE LISTENER SEAM: every listening socket this process serves. Today: made from --listen.
/// The upgrade layer replaces this function with sockets inherited from the previous process
/// (or systemd), falling back to making them; nothing else in main needs to change.
graceful::result<std::vector<listener>> open_listeners(const config& cfg) {
  std::vector<listener> out;
  for (auto& a : cfg.listen) {
    auto fd = http::open_listener(a);
    if (!fd) {
      for (auto& l : out) ::close(l.fd);
      spdlog::error("cannot listen on {}: {}", a, fd.error().message());
      return fd.error();
    }
    out.push_back({a, fd.value()});
  }
  return out;
}

void write_pid_file(const std::string& path) {
  if (path.empty()) return;
  // write + rename: a reader never sees a half-written file.
  auto tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << getpid() << "\n";
    if (!f) {
      spdlog::error("cannot write pid file {}", tmp);
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) spdlog::error("cannot write pid file {}: {}", path, std::strerror(errno));
}

void remove_pid_file(const std::string& path) {
  if (path.empty()) return;
  std::ifstream f(path);
  long pid = 0;
  if (f >> pid && pid == getpid()) std::remove(path.c_str());  // only if it is still ours
}

} // namespace

int main(int argc, char** argv) {
  config cfg;
  if (int code = parse_flags(argc, argv, cfg); code >= 0) return code;
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  raise_fd_limit();

  graceful::lifecycle::options lo;
  lo.program_name = "graceful-server";
  lo.drain_delay = cfg.drain_delay;
  lo.shutdown_timeout = cfg.shutdown_timeout;
  if (!cfg.diag_dir.empty()) lo.diag_dir = cfg.diag_dir;
  graceful::lifecycle::lifecycle lc(lo);

  auto listeners = open_listeners(cfg);
  if (!listeners) return listeners.error() == http::errc::bad_address ? 2 : 1;  // a bad --listen is a bad flag

  graceful_server::app app{lc};
  http::options so;
  so.threads = cfg.threads;
  http::server server(graceful_server::make_routes(app), so);
  app.server = &server;
  auto http_reg = http::attach(server, lc);

  for (auto& l : listeners.value()) {
    auto port = http::local_port(l.fd);
    if (auto r = server.adopt(l.fd); !r) {
      spdlog::error("cannot serve {}: {}", l.address, r.error().message());
      return 1;
    }
    spdlog::info("listening on {} (port {})", l.address, port ? port.value() : 0);
  }
  write_pid_file(cfg.pid_file);
  int code = lc.run();
  remove_pid_file(cfg.pid_file);
  return code;
}
