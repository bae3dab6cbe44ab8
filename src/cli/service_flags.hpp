#pragma once
// The flags every graceful service program shares (graceful-server, grpc-greeter,
// echo-server): how it stops (--drain-delay, --shutdown-timeout), how it upgrades
// (--upgrade-timeout, --pid-file, --takeover, --takeover-socket), where diagnostics go
// (--diag-dir) and how much it logs (--log-level). One parser, so the same flag means the same
// thing, takes the same grammar and fails with the same message and exit code 2 in every
// program. Not installed: a user's program has its own flags; this is for graceful's own.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <spdlog/common.h>

#include <graceful/lifecycle/options.hpp>
#include <graceful/upgrade/options.hpp>

namespace graceful::cli {

/// Which of the shared flags a program offers, and the words its --help uses for them.
struct service_flags_spec {
  /// The program's name: it starts every error message ("graceful-server: --drain-delay: ...").
  std::string program;
  /// What the program does while the drain delay runs (its readiness signal differs).
  std::string drain_delay_help = "keep serving this long with readiness failing before shutting down (default 0)";
  /// echo-server has no takeover (it is the smallest example of the upgrade layer).
  bool takeover = true;
};

/// The shared flags, as parsed: every default written here is the one --help states.
struct service_flags {
  std::chrono::milliseconds drain_delay{0};           // --drain-delay, default 0: stop draining at once
  std::chrono::milliseconds shutdown_timeout{25'000}; // --shutdown-timeout, default 25s (under Kubernetes' 30 s grace)
  std::chrono::milliseconds upgrade_timeout{60'000};  // --upgrade-timeout, default 60s for a new binary to be ready
  std::string pid_file;                               // --pid-file, default none
  std::string takeover;                               // --takeover PATH, default none
  std::string takeover_socket;                        // --takeover-socket PATH, default none
  std::string diag_dir;                               // --diag-dir, default: the temp dir
  spdlog::level::level_enum log_level = spdlog::level::info;  // --log-level, default info

  /// Adds the flags to `app`; `check()` converts them after `app.parse`.
  void add_to(CLI::App& app, service_flags_spec spec);
  /// After parsing: converts the texts, or returns the message (naming the flag) to print.
  std::optional<std::string> check();

  /// The lifecycle's options these flags describe.
  lifecycle::options lifecycle_options() const;
  /// The upgrader's options. A new version that is not ready in time gets SIGTERM and drains
  /// what it accepted: it runs with these flags, so it gets their drain delay and shutdown
  /// timeout, plus a moment for its own deadline exit, before the SIGKILL.
  upgrade::options upgrade_options() const;

private:
  service_flags_spec spec_;
  std::string drain_text_ = "0", shutdown_text_ = "25s", upgrade_text_ = "60s", log_text_ = "info";
};

/// `app.parse` with the conventions of graceful's programs. Returns -1 to go on, 0 after
/// --help or --version (printed), 2 on a bad flag (the message and a hint on stderr).
int parse(CLI::App& app, int argc, char** argv, std::string_view program);

/// Prints "program: message" on stderr and returns 2, the exit code of a bad flag.
int bad_flag(std::string_view program, std::string_view message);

/// Parses a duration flag (Go style: "250ms", "5s", "1m30s", "0"), rounding up to
/// whole milliseconds so that "1us" is never 0. `positive`: 0 is refused too.
std::optional<std::chrono::milliseconds> duration_flag(std::string_view text, bool positive);

} // namespace graceful::cli
