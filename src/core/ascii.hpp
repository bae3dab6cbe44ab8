#pragma once
// ASCII case-insensitive comparison for protocol tokens (HTTP field names and values such
// as "Connection: close", RFC 9110 5.1). Internal; not installed. Locale-independent on
// purpose: std::tolower in a Turkish locale maps 'I' elsewhere.

#include <string_view>

namespace graceful::detail {

/// 'A'-'Z' to 'a'-'z'; every other byte unchanged.
constexpr char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// True when `a` and `b` are equal ignoring ASCII case.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

} // namespace graceful::detail
