#pragma once
// systemd socket activation and sd_notify, through libsystemd. Internal.

#include <string>
#include <vector>

#include <graceful/core/result.hpp>
#include <graceful/upgrade/listeners.hpp>

namespace graceful::upgrade::detail {

/// The sockets systemd passed (LISTEN_PID must be this pid), named by LISTEN_FDNAMES.
/// Unsets LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES so that children do not misread them.
/// Empty when not socket-activated. The fds are not validated here (listeners::adopt does).
result<std::vector<named_fd>> systemd_listen_fds();

/// True when NOTIFY_SOCKET is set.
bool under_systemd();
/// sd_notify(state) from this process; no-op outside systemd. Failures are ignored: the
/// supervisor's view is advisory, serving is not.
void notify(const std::string& state);

} // namespace graceful::upgrade::detail
