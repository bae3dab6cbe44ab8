#include <graceful/core/duration.hpp>

#include <cmath>
#include <fmt/format.h>

namespace graceful {

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) {
  if (s == "0") return std::chrono::nanoseconds{0};
  if (s.empty()) return std::nullopt;
  long double total_ns = 0;
  while (!s.empty()) {
    size_t i = 0;
    bool digits = false, dot = false;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || (s[i] == '.' && !dot))) {
      if (s[i] == '.') dot = true; else digits = true;
      ++i;
    }
    if (!digits) return std::nullopt;
    long double value = std::stold(std::string(s.substr(0, i)));
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && ((s[u] >= 'a' && s[u] <= 'z'))) ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    long double scale;
    if (unit == "ns") scale = 1;
    else if (unit == "us") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return std::nullopt;
    total_ns += value * scale;
  }
  if (!std::isfinite(total_ns) || total_ns > 9.2e18L) return std::nullopt;
  return std::chrono::nanoseconds{static_cast<long long>(std::llround(total_ns))};
}

std::string format_duration(std::chrono::nanoseconds d) {
  auto ns = d.count();
  if (ns == 0) return "0s";
  if (ns % 3'600'000'000'000 == 0) return fmt::format("{}h", ns / 3'600'000'000'000);
  if (ns % 60'000'000'000 == 0) return fmt::format("{}m", ns / 60'000'000'000);
  if (ns >= 1'000'000'000) return fmt::format("{:g}s", static_cast<double>(ns) / 1e9);
  if (ns >= 1'000'000) return fmt::format("{:g}ms", static_cast<double>(ns) / 1e6);
  if (ns >= 1'000) return fmt::format("{:g}us", static_cast<double>(ns) / 1e3);
  return fmt::format("{}ns", ns);
}

} // namespace graceful
