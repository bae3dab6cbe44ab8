#include "http/tcp_state.hpp"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace graceful::http::detail {

tcp_state read_tcp_state(int fd) noexcept {
  tcp_state s;
  int outq = 0, inq = 0;
  if (::ioctl(fd, SIOCOUTQ, &outq) != 0 || ::ioctl(fd, SIOCINQ, &inq) != 0) return s;
  ::tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return s;
  s.known = true;
  s.unacked = outq > 0 ? static_cast<std::size_t>(outq) : 0;
  s.unread = inq > 0 ? static_cast<std::size_t>(inq) : 0;
  s.srtt = std::chrono::microseconds(ti.tcpi_rtt);
  // An older kernel fills less of the struct: its min_rtt stays 0 (no sample).
  if (len >= offsetof(::tcp_info, tcpi_min_rtt) + sizeof ti.tcpi_min_rtt)
    s.min_rtt = std::chrono::microseconds(ti.tcpi_min_rtt);
  return s;
}

} // namespace graceful::http::detail
