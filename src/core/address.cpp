#include <graceful/core/address.hpp>

#include <charconv>
#include <cstddef>
#include <cstring>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <graceful/core/errc.hpp>
#include <graceful/core/last_errno.hpp>

namespace graceful {
namespace {

result<std::uint16_t> parse_port(std::string_view s) {
  unsigned p = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || p > 65535) return errc::address_bad_port;
  return static_cast<std::uint16_t>(p);
}

// Numeric IPv6 only (AI_NUMERICHOST: getaddrinfo never consults DNS then); unlike
// inet_pton it reads a scope id ("fe80::1%eth0", if_nametoindex is a local lookup).
bool parse_ipv6(const std::string& host, std::uint16_t port, sockaddr_in6& out) {
  addrinfo hints{};
  hints.ai_family = AF_INET6;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) return false;
  bool ok = res->ai_addrlen == sizeof out;
  if (ok) std::memcpy(&out, res->ai_addr, sizeof out);
  ::freeaddrinfo(res);
  return ok;
}

} // namespace

result<address> address::parse(std::string_view text) {
  address a;
  if (text.empty()) return errc::address_empty;
  if (text.starts_with("unix:") || text.starts_with("/")) {
    auto path = text.starts_with("/") ? text : text.substr(5);
    sockaddr_un un{};
    if (path.empty()) return errc::address_unix_path_empty;
    // sun_path keeps its terminating NUL for filesystem sockets (unix(7)).
    if (path.size() >= sizeof un.sun_path) return errc::address_unix_path_too_long;
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&a.storage_, &un, sizeof un);
    a.len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return a;
  }
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string_view::npos) return errc::address_unclosed_bracket;
    if (close + 1 == text.size()) return errc::address_missing_port;
    if (text[close + 1] != ':') return errc::address_unclosed_bracket;
    auto port = parse_port(text.substr(close + 2));
    if (!port) return port.error();
    sockaddr_in6 in6{};
    if (!parse_ipv6(std::string(text.substr(1, close - 1)), port.value(), in6)) return errc::address_bad_host;
    std::memcpy(&a.storage_, &in6, sizeof in6);
    a.len_ = sizeof in6;
    return a;
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return errc::address_missing_port;
  auto host = text.substr(0, colon);
  if (host.find(':') != std::string_view::npos) return errc::address_ipv6_needs_brackets;
  auto port = parse_port(text.substr(colon + 1));
  if (!port) return port.error();
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port.value());
  // inet_pton, not inet_aton: only the dotted quad, so "127.1" or "0x7f.1" are refused.
  if (::inet_pton(AF_INET, std::string(host).c_str(), &in.sin_addr) != 1) return errc::address_bad_host;
  std::memcpy(&a.storage_, &in, sizeof in);
  a.len_ = sizeof in;
  return a;
}

result<address> address::of_socket(int fd) {
  address a;
  a.len_ = sizeof a.storage_;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage_), &a.len_) != 0) return last_errno();
  return a;
}

std::uint16_t address::port() const noexcept {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(storage_).sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(storage_).sin6_port);
  return 0;
}

bool address::is_wildcard() const noexcept {
  if (family() == AF_INET) return reinterpret_cast<const sockaddr_in&>(storage_).sin_addr.s_addr == htonl(INADDR_ANY);
  if (family() == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6&>(storage_).sin6_addr);
  return false;
}

bool address::matched_by(const address& bound) const noexcept {
  bool any_port = port() == 0 || port() == bound.port();
  // "All interfaces" in either family is one request (see the header).
  if (is_wildcard() && bound.is_wildcard()) return any_port;
  if (family() != bound.family()) return false;
  switch (family()) {
    case AF_INET:
      return reinterpret_cast<const sockaddr_in&>(storage_).sin_addr.s_addr ==
                 reinterpret_cast<const sockaddr_in&>(bound.storage_).sin_addr.s_addr &&
             any_port;
    case AF_INET6:
      return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(storage_).sin6_addr,
                         &reinterpret_cast<const sockaddr_in6&>(bound.storage_).sin6_addr, sizeof(in6_addr)) == 0 &&
             any_port;
    case AF_UNIX: {
      auto& w = reinterpret_cast<const sockaddr_un&>(storage_);
      auto& b = reinterpret_cast<const sockaddr_un&>(bound.storage_);
      return std::strncmp(w.sun_path, b.sun_path, sizeof w.sun_path) == 0;
    }
  }
  return false;
}

std::string address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_INET:
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(storage_).sin_addr, buf, sizeof buf);
      return std::string(buf) + ":" + std::to_string(port());
    case AF_INET6:
      ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(storage_).sin6_addr, buf, sizeof buf);
      return "[" + std::string(buf) + "]:" + std::to_string(port());
    case AF_UNIX: {
      auto& un = reinterpret_cast<const sockaddr_un&>(storage_);
      return "unix:" + std::string(un.sun_path, ::strnlen(un.sun_path, sizeof un.sun_path));
    }
  }
  return {};
}

} // namespace graceful
