#pragma once
/// \file
/// Errors of the upgrade layer. Each refusal is its own value, so callers (and logs) can
/// tell "an upgrade is already running" from "the new binary never became ready".

#include <string>
#include <system_error>
#include <type_traits>

namespace graceful::upgrade {

/// Error codes of graceful::upgrade (category name "graceful.upgrade").
enum class errc : int {
  upgrade_in_progress = 1,  ///< an upgrade or takeover is already running; this one is refused
  handed_over,              ///< the sockets were already handed to another process: nothing left to do
  not_ready,                ///< upgrade() before ready(): a process that does not serve yet must not hand over
  child_exited,             ///< the new process exited before saying it was ready
  child_not_ready,          ///< the new process did not say ready within the upgrade timeout
  upgrade_cancelled,        ///< a stop began while the new process was starting; it was stopped
  protocol_mismatch,        ///< the other side speaks another hand-over protocol version
  invalid_inherited_fd,     ///< an inherited fd is not a listening socket (forged or stale LISTEN_FDS / hand-over)
  address_mismatch,         ///< an inherited socket is bound to another family, type or address than asked
  bad_address,              ///< not returned any more: malformed addresses are graceful::errc address_* values
  duplicate_name,           ///< listen() called twice with one name
  peer_rejected,            ///< takeover peer is another user (SO_PEERCRED) or the socket mode is unsafe
  takeover_failed,          ///< the old process refused or broke the takeover conversation
  unsafe_path,              ///< a pid file or socket path is a symlink or otherwise unsafe to write
  invalid_name,             ///< a listener name that cannot travel: empty, over 255 bytes, ':' or control characters
  parent_gone,              ///< the process that started this one for a hand-over exited before it heard "ready": the upgrade is abandoned
};

/// What kind of error an errc is, for callers that act on the kind: compare with
/// `ec == graceful::upgrade::condition::bad_configuration` (category "graceful.upgrade.condition").
enum class condition : int {
  /// The process was started wrongly, and retrying cannot help: forged or mismatched
  /// LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES or hand-over variables, an inherited fd that is not
  /// a listening socket or is bound elsewhere than asked, a duplicate or invalid listener
  /// name, a bad address, a parent speaking another protocol version, a takeover socket of
  /// another user or with an unsafe mode. Programs exit 2 for
  /// it, as for a bad flag (see exit_code_for).
  bad_configuration = 1,
};


/// The category of errc.
const std::error_category& upgrade_category() noexcept;

/// The category of condition.
const std::error_category& upgrade_condition_category() noexcept;

/// Makes errc usable as std::error_code.
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), upgrade_category()};
}

/// Makes condition usable as std::error_condition.
inline std::error_condition make_error_condition(condition c) noexcept {
  return {static_cast<int>(c), upgrade_condition_category()};
}

/// The exit status for a program whose start-up failed with `ec`: 2 for
/// condition::bad_configuration (like a bad flag: the operator must fix the setup), 1 for
/// anything else (the environment may change: a port in use, a full fd table). The one place
/// graceful-server, graceful-run and the examples map start-up errors to exit codes.
int exit_code_for(const std::error_code& ec) noexcept;

} // namespace graceful::upgrade

template <>
struct std::is_error_code_enum<graceful::upgrade::errc> : std::true_type {};
template <>
struct std::is_error_condition_enum<graceful::upgrade::condition> : std::true_type {};
