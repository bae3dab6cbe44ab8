#include <graceful/http/server.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace graceful::http {

namespace {

std::error_code last_error() { return {errno, std::system_category()}; }

struct parsed_address {
  sockaddr_storage ss{};
  socklen_t len = 0;
};

result<parsed_address> parse_address(std::string_view a) {
  std::string_view host, port;
  if (!a.empty() && a.front() == '[') {
    auto close = a.find("]:");
    if (close == std::string_view::npos) return errc::bad_address;
    host = a.substr(1, close - 1);
    port = a.substr(close + 2);
  } else {
    auto colon = a.rfind(':');
    if (colon == std::string_view::npos) return errc::bad_address;
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return errc::bad_address;  // v6 needs brackets
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || p > 65535) return errc::bad_address;
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  std::string h(host);
  parsed_address out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(p));
    out.len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(p));
    out.len = sizeof(sockaddr_in6);
  } else {
    return errc::bad_address;  // names are not resolved: a listener binds numeric addresses
  }
  return out;
}

} // namespace

result<int> open_listener(std::string_view address, int backlog) {
  auto addr = parse_address(address);
  if (!addr) return addr.error();
  int fd = ::socket(addr.value().ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return last_error();
  int one = 1;
  // SO_REUSEADDR: a restarted server can bind while old connections sit in TIME_WAIT.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr.value().ss), addr.value().len) != 0 ||
      ::listen(fd, backlog) != 0) {
    auto e = last_error();
    ::close(fd);
    return e;
  }
  return fd;
}

result<std::uint16_t> local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return last_error();
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return std::error_code(EAFNOSUPPORT, std::system_category());
}

} // namespace graceful::http
