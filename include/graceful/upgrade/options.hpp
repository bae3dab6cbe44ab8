#pragma once
/// \file
/// Settings of an upgrader, each default written beside it.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <graceful/core/options_error.hpp>

#include <graceful/upgrade/spawn.hpp>

namespace spdlog { class logger; }

namespace graceful::upgrade {

/// Options of an upgrader. Checked once, by validate() (upgrader::create calls it, logs the
/// message and returns std::errc::invalid_argument).
struct options {
  /// How long a new process may take to say it is ready. After that the old one stops it
  /// (see child_stop_timeout), logs why and keeps serving. Default 60 s (graceful-server
  /// --upgrade-timeout): long enough for a server that warms caches, short enough that a hung
  /// binary is noticed.
  std::chrono::milliseconds upgrade_timeout{std::chrono::seconds(60)};

  /// A new process that is stopped before it said ready (not ready within upgrade_timeout,
  /// failed hand-over, or a stop of this process began) gets SIGTERM and this long to exit
  /// before SIGKILL. It serves from the moment it has its sockets, so it may hold accepted
  /// connections: SIGTERM lets it drain them. Set it to the new binary's own drain delay +
  /// shutdown timeout + a margin (graceful-server and echo-server do). Default 5 s.
  std::chrono::milliseconds child_stop_timeout{std::chrono::seconds(5)};

  /// Rewritten (atomically) by whichever process is live: at ready() and by each new
  /// process once it is ready. Empty (default): no pid file.
  std::filesystem::path pid_file{};

  /// Once ready, offer the listening sockets to a process started by hand on this UNIX
  /// socket (mode 0600, same-uid peers only), like HAProxy's -x. Empty (default): no
  /// takeover socket.
  std::filesystem::path takeover_socket{};

  /// At create(), take the listening sockets from the old process's takeover socket at this
  /// path instead of binding; ready() then tells the old process to drain. Empty (default):
  /// do not take over.
  std::filesystem::path takeover_from{};

  /// The arguments the new process gets, argv[0] included. Empty (default): this process's
  /// own, read from /proc/self/cmdline, so the new version runs with the same flags.
  std::vector<std::string> argv{};

  /// The program a new process runs. Empty (default): argv[0] resolved at create() to an
  /// absolute path (through $PATH when it has no '/'), so that a binary deployed at that
  /// path runs on the next upgrade, not the old inode behind /proc/self/exe.
  std::filesystem::path executable{};

  /// Accept systemd socket activation (LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES). Default true.
  bool systemd_activation = true;

  /// Talk to systemd (READY=1, RELOADING=1, STOPPING=1, MAINPID=) when NOTIFY_SOCKET is set.
  /// Default true; a no-op outside systemd.
  bool systemd_notify = true;

  /// Starts the new process. Empty (default): posix_spawn_process. Tests inject fakes here.
  spawn_function spawn{};

  /// Logger for one line per event. Null (default): spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger{};
};

/// Checks every field of `o` once: the first bad one, or nothing when all are valid.
/// Empty argv and executable are valid (create() fills them in from /proc/self).
std::optional<options_error> validate(const options& o);

} // namespace graceful::upgrade
