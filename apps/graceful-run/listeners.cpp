#include "listeners.hpp"

#include <cerrno>
#include <cstring>
#include <memory>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fmt/format.h>

namespace graceful::run {
namespace {

std::error_code last_error() { return {errno, std::generic_category()}; }

std::string describe(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
    return fmt::format("{}:{}", host, ntohs(a.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
    return fmt::format("[{}]:{}", host, ntohs(a.sin6_port));
  }
  if (ss.ss_family == AF_UNIX) {
    auto& a = reinterpret_cast<const sockaddr_un&>(ss);
    return fmt::format("unix:{}", a.sun_path);
  }
  return "?";
}

// Moves `fd` to a number >= min_fd (still close-on-exec) and closes the original.
graceful::result<unique_fd> renumber(unique_fd fd, int min_fd) {
  if (fd.get() >= min_fd) return fd;
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, min_fd);
  if (moved < 0) return last_error();
  return unique_fd{moved};
}

} // namespace

bool valid_listener_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

graceful::result<listener> open_listener(std::string name, std::string address, int min_fd) {
  listener l{std::move(name), std::move(address), {}, {}};
  std::string_view a = l.address;
  sockaddr_storage ss{};
  socklen_t len = 0;

  if (a.starts_with("unix:") || a.starts_with("/")) {
    std::string path{a.starts_with("unix:") ? a.substr(5) : a};
    auto& un = reinterpret_cast<sockaddr_un&>(ss);
    if (path.empty() || path.size() >= sizeof un.sun_path)
      return std::make_error_code(std::errc::invalid_argument);
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    // A socket file left by an earlier run would make bind fail with EADDRINUSE; remove it,
    // but only when it is a socket, never a regular file someone mistyped.
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  } else {
    auto colon = a.rfind(':');
    if (colon == std::string_view::npos) return std::make_error_code(std::errc::invalid_argument);
    std::string host{a.substr(0, colon)};
    std::string port{a.substr(colon + 1)};
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    if (host.empty() || host == "*") host = "0.0.0.0";
    if (port.empty()) return std::make_error_code(std::errc::invalid_argument);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res)
      return std::make_error_code(std::errc::invalid_argument);
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
    std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
    len = res->ai_addrlen;
  }

  unique_fd fd{::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd) return last_error();
  int one = 1;
  if (ss.ss_family != AF_UNIX) {
    // A restart of graceful-run itself must be able to bind while old connections sit in
    // TIME_WAIT.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (ss.ss_family == AF_INET6) {
    // "[::]:80" means IPv6 only, so that an explicit "0.0.0.0:80" beside it does not clash.
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return last_error();
  // SOMAXCONN (4096 since Linux 5.4): while no worker accepts — a crash, the gap between
  // two workers — connections wait in this queue instead of being refused.
  if (::listen(fd.get(), SOMAXCONN) != 0) return last_error();

  sockaddr_storage got{};
  socklen_t got_len = sizeof got;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&got), &got_len) == 0)
    l.bound = describe(got);
  auto moved = renumber(std::move(fd), min_fd);
  if (!moved) return moved.error();
  l.fd = std::move(moved).value();
  return l;
}

} // namespace graceful::run
