#pragma once
/// \file
/// Settings of a lifecycle, each default written beside it.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <graceful/core/options_error.hpp>

namespace spdlog { class logger; }

namespace graceful::lifecycle {

/// Options of a lifecycle. Checked once, by validate() (the lifecycle constructor calls it
/// and throws std::invalid_argument with its message).
struct options {
  /// Name in logs and in diagnostic file names. Empty (default): the basename of the
  /// running executable (/proc/self/exe), as go-zero does.
  std::string program_name{};

  /// How long the process keeps serving, with readiness already false, after a stop is
  /// requested and before shutdown hooks run. Load balancers and Kubernetes endpoint
  /// removal need this: SIGTERM arrives while traffic is still being routed here.
  /// Default 0: a single process with nothing in front has no one to wait for.
  std::chrono::milliseconds drain_delay{0};

  /// Budget for the whole stop after the drain delay: drain hooks, shutdown hooks and
  /// cleanup hooks must all be done by then, else the process logs the hooks still
  /// running and exits with `deadline_exit_code`. Default 25 s: with a drain delay of
  /// up to 5 s it fits Kubernetes' default 30 s terminationGracePeriodSeconds.
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(25)};

  /// Exit code when the shutdown deadline cuts the stop short. Default 1.
  int deadline_exit_code = 1;

  /// Where SIGUSR1 stack dumps and SIGUSR2 CPU profiles are written.
  /// Empty (default): std::filesystem::temp_directory_path().
  std::filesystem::path diag_dir{};

  /// A CPU profile started by SIGUSR2 stops by itself after this long. Default 60 s, as
  /// go-zero does, so a forgotten profile does not grow without bound.
  std::chrono::seconds profile_limit{60};

  /// Handle SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 on a dedicated thread. Default
  /// true. Turn off only where the program drives the lifecycle from code alone.
  bool handle_signals = true;

  /// Logger for one line per event. Null (default): spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger{};
};

/// Per-stop overrides for request_stop().
struct stop_options {
  /// Replaces options::drain_delay for this stop when set (negative: not set). An upgrade
  /// uses 0: the sockets stay served by the new process, so there is nothing to wait for.
  std::chrono::milliseconds drain_delay{-1};
  /// Exit code run() returns after a clean stop. Default 0.
  int exit_code = 0;
};

/// Checks every field of `o` once: the first bad one, or nothing when all are valid.
/// Empty program_name and diag_dir are valid (the constructor fills them in).
std::optional<options_error> validate(const options& o);

} // namespace graceful::lifecycle
