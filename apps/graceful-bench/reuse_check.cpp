#include "reuse_check.hpp"

#include <cerrno>

#include <sys/socket.h>

namespace graceful::bench {

idle_state careful_reuse_check(int fd) noexcept {
  char c;
  for (;;) {
    const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN: nothing arrived while idle. 0 (FIN), ECONNRESET or any byte: not reusable.
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return idle_state::usable;
    return idle_state::dropped;
  }
}

} // namespace graceful::bench
