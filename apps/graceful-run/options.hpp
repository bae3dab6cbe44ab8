#pragma once
/// \file
/// Settings of graceful-run, each default written beside it.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "probe.hpp"

namespace graceful::run {

using namespace std::chrono_literals;

/// What happens when the serving worker exits without being asked to.
enum class restart_policy {
  always,      ///< restart it, whatever its status (a server is not supposed to exit)
  on_failure,  ///< restart unless it exited with code 0; after a 0, graceful-run exits 0
  never,       ///< graceful-run stops and exits with the worker's status, like tini
};

/// Options of graceful-run. Validated once by main().
struct run_options {
  /// --listen NAME=ADDR, in order: the worker sees them at fds 3, 4, ... in this order.
  std::vector<std::pair<std::string, std::string>> listen{};
  /// The worker command and its arguments (after "--").
  std::vector<std::string> command{};
  /// How long a new worker started by SIGHUP has to become ready before it is stopped and
  /// the old one kept. Default 60 s, as graceful-server's --upgrade-timeout.
  std::chrono::nanoseconds upgrade_timeout{60s};
  /// How long a worker told to stop (SIGTERM, or replaced by an upgrade) may take before it
  /// is SIGKILLed with its process group. Default 25 s: inside Kubernetes' default 30 s
  /// terminationGracePeriodSeconds with room for graceful-run itself.
  std::chrono::nanoseconds shutdown_timeout{25s};
  /// Readiness by HTTP GET (2xx = ready) instead of, or besides, READY=1 on NOTIFY_SOCKET.
  /// Default none.
  std::optional<graceful::run::ready_url> ready_url{};
  /// Poll interval of --ready-url. Default 100 ms: an upgrade completes at most this long
  /// after the worker can serve, without loading it.
  std::chrono::nanoseconds ready_poll_interval{100ms};
  /// A worker still running this long after start counts as ready, for servers that
  /// neither notify nor have a health URL. Default 0: off.
  std::chrono::nanoseconds ready_after{0};
  /// First delay before restarting a crashed worker; doubles on each crash in a row.
  /// Default 100 ms: a one-off crash costs little, connections wait in the listen queue.
  std::chrono::nanoseconds restart_backoff{100ms};
  /// Upper bound of the restart delay. Default 10 s.
  std::chrono::nanoseconds restart_backoff_max{10s};
  /// A worker that ran this long before crashing resets the delay to restart_backoff.
  /// Default 10 s.
  std::chrono::nanoseconds healthy_after{10s};
  /// Default always: graceful-run exists to keep the server up.
  restart_policy restart = restart_policy::always;
  /// Where graceful-run writes its own pid (the one to send SIGHUP to). Default none.
  std::string pid_file{};
};

} // namespace graceful::run
