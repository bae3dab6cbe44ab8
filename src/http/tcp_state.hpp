#pragma once
// What the kernel knows about a TCP connection that the lingering close needs: whether the
// peer has acknowledged every byte we sent, and the path's round-trip time. In its own
// translation unit because <linux/tcp.h> (tcpi_min_rtt) and <netinet/tcp.h> (which Asio
// includes) both define struct tcp_info.

#include <chrono>
#include <cstddef>

namespace graceful::http::detail {

struct tcp_state {
  /// False when the socket could not be asked (not TCP, closed): nothing below is meaningful.
  bool known = false;
  /// Bytes sent (or queued) and not yet acknowledged, SIOCOUTQ. After shutdown(SHUT_WR) the
  /// FIN counts as one: every data byte is acknowledged when this is at most 1.
  std::size_t unacked = 0;
  /// Bytes received and not yet read by us, SIOCINQ.
  std::size_t unread = 0;
  /// The lowest round-trip time seen on the connection (tcpi_min_rtt), and the smoothed one
  /// (tcpi_rtt); zero when the kernel has no sample.
  std::chrono::microseconds min_rtt{0};
  std::chrono::microseconds srtt{0};
};

/// Asks the kernel about TCP socket `fd`. Never blocks.
tcp_state read_tcp_state(int fd) noexcept;

} // namespace graceful::http::detail
