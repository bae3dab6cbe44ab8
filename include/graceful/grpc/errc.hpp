#pragma once
/// \file
/// Errors of graceful::grpc.

#include <string>
#include <system_error>
#include <type_traits>

namespace graceful::grpc {

/// Error codes of graceful::grpc (category name "graceful.grpc").
enum class errc : int {
  not_a_listener = 1,  ///< serve() got an fd that is not a listening SOCK_STREAM socket
  acceptor_stopped,    ///< serve() after stop(): the acceptor no longer hands connections to gRPC
  calls_cancelled,     ///< shutdown(): the deadline passed with calls in flight; gRPC cancelled them
};

/// The category of errc.
const std::error_category& grpc_category() noexcept;

/// Makes errc usable as std::error_code.
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), grpc_category()}; }

} // namespace graceful::grpc

template <>
struct std::is_error_code_enum<graceful::grpc::errc> : std::true_type {};
