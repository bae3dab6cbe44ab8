#pragma once
/// \file
/// The check a careful client makes before reusing an idle keep-alive connection.

namespace graceful::bench {

/// What the check before reusing an idle keep-alive connection found.
enum class idle_state {
  usable,   ///< nothing arrived while idle: send on it
  dropped,  ///< FIN, RST or unsolicited bytes arrived while idle: retire it, open a new one
};

/// urllib3's `is_connection_dropped` (a zero-timeout readiness check just before reuse): an
/// idle HTTP/1.1 connection on which anything is readable — EOF, a reset, or bytes nobody
/// asked for (a 408 before a close) — cannot carry the next request. One non-blocking
/// recv(MSG_PEEK); nothing is consumed.
idle_state careful_reuse_check(int fd) noexcept;

} // namespace graceful::bench
