#pragma once
// Listen addresses as text <-> sockaddr. Internal to the upgrade layer.

#include <string>
#include <string_view>

#include <sys/socket.h>

#include <graceful/core/result.hpp>

namespace graceful::upgrade::detail {

/// A parsed listen address.
struct sock_address {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family() const noexcept { return storage.ss_family; }
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
};

/// "host:port", "[v6]:port", "unix:/path". Hosts go through getaddrinfo (numeric port only).
result<sock_address> parse_address(std::string_view text);
/// True when `bound` (from getsockname) satisfies `wanted` (port 0 in `wanted` = any port).
bool address_matches(const sock_address& wanted, const sock_address& bound);
/// Text form, as parse_address reads it.
std::string format_address(const sock_address& a);

} // namespace graceful::upgrade::detail
