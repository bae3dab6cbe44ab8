#pragma once
/// \file
/// Human durations for flags and config: "250ms", "5s", "1m30s", "2h", "0".

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace graceful {

/// Parses Go-style durations: a sequence of <number><unit> with units ns, us, ms, s, m, h
/// (fractions allowed: "1.5s"). A bare "0" is zero. Returns nullopt on anything else,
/// including negative values and overflow.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

/// Formats a duration the way parse_duration reads it, choosing a readable unit ("1.5s", "250ms").
std::string format_duration(std::chrono::nanoseconds d);

} // namespace graceful
