#include "cli/service_flags.hpp"

#include <cstdio>

#include <graceful/core/duration.hpp>

namespace graceful::cli {

void service_flags::add_to(CLI::App& app, service_flags_spec spec) {
  spec_ = std::move(spec);
  app.add_option("--drain-delay", drain_text_, spec_.drain_delay_help);
  app.add_option("--shutdown-timeout", shutdown_text_,
                 "budget for the whole stop after the drain delay; what still runs then is cut and the exit "
                 "code is 1 (default 25s)");
  app.add_option("--pid-file", pid_file, "write the process id here (rewritten by the new process on upgrade)");
  app.add_option("--upgrade-timeout", upgrade_text_,
                 "on SIGHUP, how long the new binary may take to be ready before it is killed (default 60s)");
  if (spec_.takeover) {
    app.add_option("--takeover", takeover,
                   "take the listening sockets from the process offering them on this UNIX socket");
    app.add_option("--takeover-socket", takeover_socket,
                   "once ready, offer the listening sockets on this UNIX socket (0600) to a --takeover");
  }
  app.add_option("--diag-dir", diag_dir, "where SIGUSR1 dumps and SIGUSR2 profiles go (default: temp dir)");
  app.add_option("--log-level", log_text_, "trace, debug, info, warn, error, critical or off (default info)");
}

std::optional<std::string> service_flags::check() {
  auto d = duration_flag(drain_text_, false);
  if (!d) return "--drain-delay: not a duration: '" + drain_text_ + "' (try 250ms, 5s)";
  drain_delay = *d;
  // The lifecycle needs time to stop in: 0 would be a deadline already passed.
  auto t = duration_flag(shutdown_text_, true);
  if (!t) return "--shutdown-timeout: not a positive duration: '" + shutdown_text_ + "' (try 25s)";
  shutdown_timeout = *t;
  auto u = duration_flag(upgrade_text_, true);
  if (!u) return "--upgrade-timeout: not a positive duration: '" + upgrade_text_ + "' (try 30s, 2m)";
  upgrade_timeout = *u;
  log_level = spdlog::level::from_str(log_text_);
  if (log_level == spdlog::level::off && log_text_ != "off") return "--log-level: unknown level '" + log_text_ + "'";
  return std::nullopt;
}

lifecycle::options service_flags::lifecycle_options() const {
  lifecycle::options lo;
  lo.program_name = spec_.program;
  lo.drain_delay = drain_delay;
  lo.shutdown_timeout = shutdown_timeout;
  if (!diag_dir.empty()) lo.diag_dir = diag_dir;
  return lo;
}

upgrade::options service_flags::upgrade_options() const {
  upgrade::options uo;
  uo.upgrade_timeout = upgrade_timeout;
  uo.child_stop_timeout = drain_delay + shutdown_timeout + std::chrono::seconds(1);
  uo.pid_file = pid_file;
  uo.takeover_from = takeover;
  uo.takeover_socket = takeover_socket;
  return uo;
}

int parse(CLI::App& app, int argc, char** argv, std::string_view program) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%.*s: %s\nRun with --help for usage.\n", static_cast<int>(program.size()), program.data(),
                 e.what());
    return 2;
  }
  return -1;
}

int bad_flag(std::string_view program, std::string_view message) {
  std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(program.size()), program.data(),
               static_cast<int>(message.size()), message.data());
  return 2;
}

std::optional<std::chrono::milliseconds> duration_flag(std::string_view text, bool positive) {
  auto d = parse_duration(text);
  if (!d || (positive && d->count() <= 0)) return std::nullopt;
  return std::chrono::ceil<std::chrono::milliseconds>(*d);
}

} // namespace graceful::cli
