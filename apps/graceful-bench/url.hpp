#pragma once
/// \file
/// Parsing the URL argument.

#include <optional>
#include <string>
#include <string_view>

#include "options.hpp"

namespace graceful::bench {

/// Splits "http://host[:port][/path][?query]" (IPv6 as [::1]). Returns nullopt and sets
/// `why` for anything else, including https:// (not supported: plaintext HTTP/1.1 only).
std::optional<target> parse_url(std::string_view url, std::string& why);

} // namespace graceful::bench
