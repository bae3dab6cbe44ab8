#pragma once
/// \file
/// The names listening sockets travel under between processes (upgrade::listen(name, ...),
/// graceful-run --listen NAME=ADDR, LISTEN_FDNAMES, the hand-over and takeover protocols).

#include <string_view>

namespace graceful {

/// True when `name` is 1-255 characters of [A-Za-z0-9_.@-]. Every name graceful's programs
/// and tests use passes, so do systemd's default names (the socket unit's name, "app.socket",
/// "app@1.socket"); ':' can never pass (LISTEN_FDNAMES and the hand-over variables are
/// ':'-separated), nor can spaces, quotes or control characters that would make log lines
/// and environment variables ambiguous. One rule for every place a name is checked.
constexpr bool valid_listener_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

} // namespace graceful
