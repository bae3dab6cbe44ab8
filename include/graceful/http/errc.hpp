#pragma once
/// \file
/// Errors of the HTTP server: `graceful::http::errc` and its error category.

#include <system_error>

namespace graceful::http {

/// Why a server call failed. Compare a std::error_code with these values directly.
enum class errc : int {
  /// serve()/listen_and_serve()/adopt() after shutdown() or close() began (Go's ErrServerClosed).
  server_closed = 1,
  /// shutdown(deadline) reached its deadline with connections still open; call close() next.
  shutdown_timeout = 2,
  /// A listen address the HTTP server cannot serve: a UNIX socket ("unix:/path"). Malformed
  /// addresses are graceful::errc address_* values (graceful/core/errc.hpp).
  bad_address = 3,
  /// An fd handed to serve()/adopt() that is not a listening TCP socket.
  not_a_listener = 4,
};

/// The category of errc ("graceful.http").
const std::error_category& http_category() noexcept;

/// Makes errc values usable as std::error_code.
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), http_category()}; }

} // namespace graceful::http

template <> struct std::is_error_code_enum<graceful::http::errc> : std::true_type {};
