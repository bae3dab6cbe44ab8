#pragma once
// graceful's parent -> child hand-over protocol (the wire format is documented in
// handover.cpp, above the code that implements it). Internal.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace spdlog { class logger; }

#include <graceful/core/deadline.hpp>
#include <graceful/core/result.hpp>
#include <graceful/upgrade/listeners.hpp>
#include <graceful/upgrade/unique_fd.hpp>

namespace graceful::upgrade::detail {

/// Bump on any incompatible change to the variables or the ready line, in both directions.
inline constexpr int handover_version = 1;

/// What a child learns from its environment.
struct inherited {
  pid_t parent = 0;
  std::vector<named_fd> fds;
  unique_fd ready_fd;
};

/// Reads and unsets the GRACEFUL_* hand-over variables. nullopt when there are none (or
/// they were meant for another process: GRACEFUL_PARENT_PID is not our parent). Why it
/// refuses or ignores them goes to `log`.
result<std::optional<inherited>> read_handover_env(spdlog::logger& log);

/// The environment for a child: ours without any LISTEN_* / GRACEFUL_* variable, plus the
/// hand-over variables for `names` at fds 3.. and the ready fd right after them.
std::vector<std::string> child_env(const std::vector<std::string>& names);

/// The line a ready process sends ("GRACEFUL-READY <version> <pid>\n").
std::string ready_line(pid_t pid);
/// Parses a ready line; errc::protocol_mismatch for another version or anything else.
result<pid_t> parse_ready_line(std::string_view line);

/// Sends `text` on a socket without raising SIGPIPE when the peer is gone.
result<void> send_all(int fd, std::string_view text);
/// Reads one '\n'-terminated line from a stream socket until `d` or until `cancel_fd`
/// (-1: none) is readable. Errors: std::errc::timed_out, errc::upgrade_cancelled,
/// errc::child_exited (EOF before a full line).
result<std::string> read_line(int fd, graceful::deadline d, int cancel_fd);

// Fd names travel colon-separated (as systemd's LISTEN_FDNAMES); each is checked with
// graceful::valid_listener_name (graceful/core/listener_name.hpp).

} // namespace graceful::upgrade::detail
