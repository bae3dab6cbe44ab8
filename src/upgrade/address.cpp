#include "address.hpp"

#include <charconv>
#include <cstring>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <graceful/upgrade/errc.hpp>

namespace graceful::upgrade::detail {

result<sock_address> parse_address(std::string_view text) {
  sock_address a;
  if (text.starts_with("unix:")) {
    auto path = text.substr(5);
    sockaddr_un un{};
    // sun_path needs its terminating NUL for filesystem sockets (unix(7)).
    if (path.empty() || path.size() >= sizeof un.sun_path) return errc::bad_address;
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&a.storage, &un, sizeof un);
    a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return a;
  }
  std::string_view host, port;
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return errc::bad_address;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return errc::bad_address;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return errc::bad_address;  // v6 needs brackets
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || p > 65535)
    return errc::bad_address;
  if (host.empty()) host = "0.0.0.0";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string h(host), ps = std::to_string(p);
  if (getaddrinfo(h.c_str(), ps.c_str(), &hints, &res) != 0 || !res) return errc::bad_address;
  std::memcpy(&a.storage, res->ai_addr, res->ai_addrlen);
  a.len = res->ai_addrlen;
  freeaddrinfo(res);
  return a;
}

namespace {
bool is_wildcard(const sock_address& a, std::uint16_t& port) {
  if (a.family() == AF_INET) {
    auto& in = reinterpret_cast<const sockaddr_in&>(a.storage);
    port = in.sin_port;
    return in.sin_addr.s_addr == htonl(INADDR_ANY);
  }
  if (a.family() == AF_INET6) {
    auto& in = reinterpret_cast<const sockaddr_in6&>(a.storage);
    port = in.sin6_port;
    return IN6_IS_ADDR_UNSPECIFIED(&in.sin6_addr);
  }
  return false;
}
} // namespace

bool address_matches(const sock_address& wanted, const sock_address& bound) {
  // "All interfaces" in either family is one request: systemd's ListenStream=8080 binds
  // [::]:8080 (dual-stack), which is what ":8080" or "0.0.0.0:8080" asks for.
  std::uint16_t wp = 0, bp = 0;
  if (is_wildcard(wanted, wp) && is_wildcard(bound, bp)) return wp == 0 || wp == bp;
  if (wanted.family() != bound.family()) return false;
  switch (wanted.family()) {
    case AF_INET: {
      auto& w = reinterpret_cast<const sockaddr_in&>(wanted.storage);
      auto& b = reinterpret_cast<const sockaddr_in&>(bound.storage);
      return w.sin_addr.s_addr == b.sin_addr.s_addr && (w.sin_port == 0 || w.sin_port == b.sin_port);
    }
    case AF_INET6: {
      auto& w = reinterpret_cast<const sockaddr_in6&>(wanted.storage);
      auto& b = reinterpret_cast<const sockaddr_in6&>(bound.storage);
      return std::memcmp(&w.sin6_addr, &b.sin6_addr, sizeof w.sin6_addr) == 0 &&
             (w.sin6_port == 0 || w.sin6_port == b.sin6_port);
    }
    case AF_UNIX: {
      auto& w = reinterpret_cast<const sockaddr_un&>(wanted.storage);
      auto& b = reinterpret_cast<const sockaddr_un&>(bound.storage);
      return std::strncmp(w.sun_path, b.sun_path, sizeof w.sun_path) == 0;
    }
  }
  return false;
}

std::string format_address(const sock_address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (a.family()) {
    case AF_INET: {
      auto& in = reinterpret_cast<const sockaddr_in&>(a.storage);
      inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(ntohs(in.sin_port));
    }
    case AF_INET6: {
      auto& in = reinterpret_cast<const sockaddr_in6&>(a.storage);
      inet_ntop(AF_INET6, &in.sin6_addr, buf, sizeof buf);
      return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in.sin6_port));
    }
    case AF_UNIX: {
      auto& un = reinterpret_cast<const sockaddr_un&>(a.storage);
      return "unix:" + std::string(un.sun_path, strnlen(un.sun_path, sizeof un.sun_path));
    }
  }
  return {};
}

} // namespace graceful::upgrade::detail
