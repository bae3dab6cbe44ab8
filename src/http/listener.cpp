#include <graceful/http/server.hpp>

#include <sys/socket.h>

#include <graceful/core/address.hpp>
#include <graceful/core/listen_socket.hpp>

namespace graceful::http {

result<int> open_listener(std::string_view address, int backlog) {
  auto at = graceful::address::parse(address);
  if (!at) return at.error();
  // The server's acceptors are TCP: a UNIX socket address parses but cannot be served.
  if (at.value().family() != AF_INET && at.value().family() != AF_INET6) return errc::bad_address;
  auto fd = open_listen_socket(at.value(), {.backlog = backlog});
  if (!fd) return fd.error();
  return fd.value().release();
}

result<std::uint16_t> local_port(int fd) {
  auto at = graceful::address::of_socket(fd);
  if (!at) return at.error();
  if (at.value().family() != AF_INET && at.value().family() != AF_INET6)
    return std::make_error_code(std::errc::address_family_not_supported);
  return at.value().port();
}

} // namespace graceful::http
