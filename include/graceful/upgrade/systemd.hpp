#pragma once
/// \file
/// systemd's side of socket activation and readiness (sd_listen_fds(3), sd_notify(3)), for
/// programs that talk to systemd without an upgrader (graceful-run). The upgrader uses the same
/// two functions. Built without libsystemd (GRACEFUL_WITH_SYSTEMD=OFF), activation is refused
/// with an error and notifications are dropped; see each function.

#include <string_view>
#include <vector>

#include <graceful/core/result.hpp>
#include <graceful/upgrade/listeners.hpp>

namespace graceful::upgrade {

/// The sockets systemd passed to this process (LISTEN_PID must be this pid), in order, named
/// by LISTEN_FDNAMES ("unknown" when unnamed), close-on-exec. Unsets LISTEN_PID, LISTEN_FDS
/// and LISTEN_FDNAMES so that children do not misread them. Empty when not socket-activated.
/// The fds are not validated here (listeners::adopt does). Without libsystemd:
/// std::errc::not_supported when this process was socket-activated.
result<std::vector<named_fd>> systemd_listen_fds();

/// True when NOTIFY_SOCKET is set (a Type=notify service, or graceful-run's worker).
bool under_systemd();

/// sd_notify(0, state) ("READY=1", "RELOADING=1", "STOPPING=1", "MAINPID=N\nREADY=1"); a no-op
/// outside systemd and without libsystemd. Failures are ignored: the supervisor's view is
/// advisory, serving is not.
void notify_systemd(std::string_view state);

} // namespace graceful::upgrade
