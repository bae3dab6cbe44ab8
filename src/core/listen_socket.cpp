#include <graceful/core/listen_socket.hpp>

#include <sys/socket.h>

#include <graceful/core/last_errno.hpp>

namespace graceful {

result<unique_fd> open_listen_socket(const address& at, const listen_socket_options& o) {
  unique_fd s(::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return last_errno();
  if (at.family() != AF_UNIX) {
    int one = 1;
    // SO_REUSEADDR: a restart must not wait out the TIME_WAIT connections of the old process.
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (::bind(s.get(), at.data(), at.size()) != 0 || ::listen(s.get(), o.backlog) != 0) return last_errno();
  return s;
}

result<unique_fd> open_listen_socket(std::string_view text, const listen_socket_options& o) {
  auto at = address::parse(text);
  if (!at) return at.error();
  return open_listen_socket(at.value(), o);
}

} // namespace graceful
