#pragma once
/// \file
/// Errors of graceful's core: `graceful::errc` and its category ("graceful.core"). Today
/// every value is a reason parse_address() refuses a listen address; the layers (http,
/// upgrade, graceful-run, graceful-server) return these codes unchanged, so a message names
/// exactly what is wrong with the text.

#include <system_error>
#include <type_traits>

namespace graceful {

/// Why a core operation failed. Compare a std::error_code with these values directly.
enum class errc : int {
  address_empty = 1,        ///< "" (no host, no port)
  address_missing_port,     ///< no ':' before a port: "8080", "127.0.0.1", "[::1]"
  address_bad_port,         ///< the port is not a decimal number 0-65535: "h:http", "h:70000", "h:"
  address_unclosed_bracket, ///< "[" without "]:" after the IPv6 address: "[::1:80", "[::1]80"
  address_ipv6_needs_brackets, ///< an IPv6 address without brackets: "::1:80"
  address_bad_host,         ///< not numeric IPv4/IPv6, "*", "localhost" or empty: names are not resolved
  address_unix_path_empty,  ///< "unix:" with nothing after it
  address_unix_path_too_long, ///< a UNIX socket path longer than sun_path allows (107 bytes)
};

/// The category of errc ("graceful.core").
const std::error_category& core_category() noexcept;

/// Makes errc values usable as std::error_code.
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), core_category()}; }

/// True when `ec` is one of the address_* values: a malformed listen address, which
/// programs report as a bad flag (exit 2) rather than an environment failure.
bool is_address_error(const std::error_code& ec) noexcept;

} // namespace graceful

template <> struct std::is_error_code_enum<graceful::errc> : std::true_type {};
