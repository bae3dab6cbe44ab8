#pragma once
/// \file
/// Listen addresses: the one grammar every layer and program of graceful reads
/// (graceful::http::server::listen, graceful::upgrade listen by name, graceful-server,
/// graceful-run and echo-server --listen).
///
/// Grammar (whole text, no spaces):
///
/// | text                      | meaning                                                   |
/// |---------------------------|-----------------------------------------------------------|
/// | `1.2.3.4:80`              | that IPv4 address (dotted quad, numeric only)              |
/// | `[::1]:80`, `[fe80::1%eth0]:80` | that IPv6 address (brackets required, scope id allowed) |
/// | `:80`, `*:80`, `0.0.0.0:80` | all IPv4 interfaces (`INADDR_ANY`)                      |
/// | `[::]:80`                 | all IPv6 interfaces (dual-stack unless net.ipv6.bindv6only) |
/// | `localhost:80`            | 127.0.0.1 only: a fixed mapping, never a lookup            |
/// | `unix:PATH`, `/PATH`      | a UNIX stream socket at PATH (1-107 bytes)                 |
///
/// Ports are decimal 0-65535; 0 asks the kernel for any free port when binding, and means
/// "any port" when matching an inherited socket. No host name is resolved: a listener binds
/// what it is told, start-up never blocks on DNS, and `localhost` cannot turn into ::1 on one
/// machine and 127.0.0.1 on another. Errors are graceful::errc values, one per reason.

#include <cstdint>
#include <string>
#include <string_view>

#include <sys/socket.h>

#include <graceful/core/result.hpp>

namespace graceful {

/// A socket address of family AF_INET, AF_INET6 or AF_UNIX (AF_UNSPEC when default-constructed).
class address {
public:
  /// An empty address (family AF_UNSPEC).
  address() noexcept = default;
  /// Parses `text` in the grammar above.
  static result<address> parse(std::string_view text);
  /// The address socket `fd` is bound to (getsockname); the errno on failure.
  static result<address> of_socket(int fd);

  /// AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC.
  int family() const noexcept { return storage_.ss_family; }
  /// For bind(2) and friends.
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  /// The length to pass with data().
  socklen_t size() const noexcept { return len_; }
  /// The port (host order); 0 for UNIX sockets.
  std::uint16_t port() const noexcept;
  /// True for 0.0.0.0 and [::] ("all interfaces").
  bool is_wildcard() const noexcept;
  /// True when a socket bound to `bound` satisfies a request for this address: same family
  /// and address, port 0 here matches any port, and a wildcard of either family matches a
  /// socket bound to the wildcard of either family (systemd's ListenStream=80 binds [::]:80,
  /// which is what ":80" or "0.0.0.0:80" asks for).
  bool matched_by(const address& bound) const noexcept;
  /// The text form, which parse() reads back: "127.0.0.1:80", "[::1]:80", "unix:/path".
  std::string to_string() const;

private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

/// address::parse(text).
inline result<address> parse_address(std::string_view text) { return address::parse(text); }

} // namespace graceful
