// graceful-run: zero-downtime restarts for any server, and a safe PID 1 in containers.
//
//   graceful-run [--listen NAME=ADDR]... [--upgrade-timeout D] [--shutdown-timeout D] -- COMMAND ARGS
//
// Opens the listening sockets once and runs COMMAND with them by the systemd
// socket-activation protocol; SIGHUP starts a new worker and retires the old one once the new
// one is ready; SIGTERM/SIGINT stop the worker and exit with its status; a crashed worker is
// restarted with backoff while the sockets stay open; every zombie is reaped.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <graceful/core/duration.hpp>
#include <graceful/core/errc.hpp>
#include <graceful/upgrade/errc.hpp>
#include <graceful/upgrade/pid_file.hpp>

#include "listeners.hpp"
#include "notify.hpp"
#include "options.hpp"
#include "supervisor.hpp"

using namespace graceful::run;

namespace {

constexpr int usage_error = 2;

// CLI11 validator + converter for durations ("250ms", "5s", "1m30s").
struct duration_flag {
  std::chrono::nanoseconds* out;
  bool allow_zero;
  std::string operator()(const std::string& text) const {
    auto d = graceful::parse_duration(text);
    if (!d) return "not a duration (like 250ms, 5s, 1m30s): " + text;
    if (!allow_zero && d->count() == 0) return "must be greater than 0";
    *out = *d;
    return {};
  }
};

} // namespace

int main(int argc, char** argv) {
  // Block the signals the loop reads from a signalfd before anything else, so that a
  // SIGTERM arriving during start-up is handled, not fatal. As PID 1 this also matters:
  // the kernel drops signals with default action to PID 1 unless it handles them.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&sigs, s);
  ::sigprocmask(SIG_BLOCK, &sigs, nullptr);
  // A supervisor must outlive a closed log pipe; write errors are ignored instead.
  // (Workers get SIG_DFL back in spawn().)
  ::signal(SIGPIPE, SIG_IGN);

  run_options opts;
  std::vector<std::string> listen_flags;
  std::string ready_url_text, restart_text = "always", log_level = "info";

  CLI::App app{"graceful-run: holds listening sockets for any server (systemd socket activation), "
               "restarts it on SIGHUP with zero downtime, and is a safe PID 1 in containers.",
               "graceful-run"};
  app.footer("Example: graceful-run --listen http=0.0.0.0:8080 -- ./server --flag\n"
             "Signals: SIGHUP upgrades; SIGTERM/SIGINT/SIGQUIT stop (forwarded to the worker); "
             "SIGUSR1/SIGUSR2 are forwarded.");
  app.add_option("--listen", listen_flags,
                 "NAME=ADDR: a listening socket passed to the worker (repeatable); ADDR is "
                 "HOST:PORT, [IPV6]:PORT, :PORT or unix:/path")
      ->type_name("NAME=ADDR")
      // One value per --listen: otherwise CLI11 lets a vector option swallow what follows.
      ->allow_extra_args(false);
  app.add_option("--upgrade-timeout", "time a new worker has to become ready (default 60s)")
      ->type_name("D")
      ->check(CLI::Validator(duration_flag{&opts.upgrade_timeout, false}, "", "duration"));
  app.add_option("--shutdown-timeout", "time a worker has to exit after SIGTERM before SIGKILL (default 25s)")
      ->type_name("D")
      ->check(CLI::Validator(duration_flag{&opts.shutdown_timeout, true}, "", "duration"));
  app.add_option("--ready-url", ready_url_text,
                 "also ready when GET on http://127.0.0.1:PORT/PATH answers 2xx")
      ->type_name("URL");
  app.add_option("--ready-after", "also ready once it has run this long (default 0: off)")
      ->type_name("D")
      ->check(CLI::Validator(duration_flag{&opts.ready_after, true}, "", "duration"));
  app.add_option("--restart", restart_text, "restart a worker that exits: always, on-failure, never (default always)")
      ->check(CLI::IsMember({"always", "on-failure", "never"}));
  app.add_option("--restart-backoff", "first restart delay, doubling per crash (default 100ms)")
      ->type_name("D")
      ->check(CLI::Validator(duration_flag{&opts.restart_backoff, true}, "", "duration"));
  app.add_option("--restart-backoff-max", "largest restart delay (default 10s)")
      ->type_name("D")
      ->check(CLI::Validator(duration_flag{&opts.restart_backoff_max, true}, "", "duration"));
  app.add_option("--pid-file", opts.pid_file, "write graceful-run's pid here (removed at exit)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off (default info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("command", opts.command, "the server to run, after --")->required()->type_name("COMMAND ARGS");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return usage_error;
  }

  auto usage = [](const std::string& msg) {
    std::fprintf(stderr, "graceful-run: %s\nRun with --help for more information.\n", msg.c_str());
    return usage_error;
  };
  std::set<std::string> names;
  for (auto& f : listen_flags) {
    auto eq = f.find('=');
    if (eq == std::string::npos) return usage("--listen takes NAME=ADDR, got: " + f);
    std::string name = f.substr(0, eq), addr = f.substr(eq + 1);
    if (!valid_listener_name(name))
      return usage("--listen name must be 1-255 characters of A-Z a-z 0-9 _ . -, got: " + name);
    if (!names.insert(name).second) return usage("--listen name used twice: " + name);
    if (addr.empty()) return usage("--listen " + name + "= needs an address");
    opts.listen.emplace_back(name, addr);
  }
  if (!ready_url_text.empty()) {
    auto u = parse_ready_url(ready_url_text);
    if (!u) return usage("--ready-url must be http://127.0.0.1:PORT/PATH, got: " + ready_url_text);
    opts.ready_url = std::move(u).value();
  }
  opts.restart = restart_text == "never"        ? restart_policy::never
                 : restart_text == "on-failure" ? restart_policy::on_failure
                                                : restart_policy::always;
  if (opts.restart_backoff > opts.restart_backoff_max)
    return usage("--restart-backoff must not exceed --restart-backoff-max");

  // One line per event on stderr; the worker owns stdout.
  auto log = spdlog::stderr_logger_st("graceful-run");
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e graceful-run[%P] %l: %v");
  log->set_level(spdlog::level::from_str(log_level));
  log->flush_on(spdlog::level::trace);

  int sfd = ::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    log->critical("signalfd: {}", std::strerror(errno));
    return 1;
  }
  unique_fd signals{sfd};

  // Orphaned grandchildren come back to us to be reaped, as they would to PID 1
  // (prctl(2) PR_SET_CHILD_SUBREAPER, Linux 3.4).
  if (::getpid() != 1 && ::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    log->warn("PR_SET_CHILD_SUBREAPER: {}", std::strerror(errno));

  std::string failed;
  auto opened = open_listeners(opts.listen, log, &failed);
  if (!opened) {
    log->critical("cannot listen on {}: {}", failed, opened.error().message());
    // Bad --listen, forged LISTEN_FDS, a duplicate name: configuration, like a bad flag.
    return graceful::upgrade::exit_code_for(opened.error()) == 2 ? usage_error : 1;
  }
  std::vector<listener> listeners = std::move(opened).value();
  for (std::size_t i = 0; i < listeners.size(); ++i)
    log->info("listening {}={} (fd {} in the worker{})", listeners[i].name, listeners[i].bound, 3 + i,
              listeners[i].inherited ? "; passed to graceful-run by systemd" : "");
  if (opts.ready_url) {
    for (auto& l : listeners)
      if (l.bound.ends_with(":" + std::to_string(opts.ready_url->port)))
        log->warn("--ready-url is on the shared listener {}: during an upgrade the old worker may "
                  "answer the probe; prefer READY=1 on NOTIFY_SOCKET or a port of the worker's own",
                  l.name);
  }
  auto notify = notify_socket::open();
  if (!notify) {
    log->critical("notify socket: {}", notify.error().message());
    return 1;
  }
  if (!opts.pid_file.empty()) {
    if (auto w = graceful::upgrade::write_pid_file(opts.pid_file); !w) {
      log->critical("cannot write --pid-file {}: {}", opts.pid_file, w.error().message());
      return 1;
    }
  }

  int status;
  {
    supervisor sup{opts, std::move(listeners), std::move(notify).value(), std::move(signals), log};
    status = sup.run();
  }
  if (!opts.pid_file.empty()) (void)graceful::upgrade::remove_pid_file_if_owned(opts.pid_file);
  log->info("exiting with status {}", status);
  return status;
}
