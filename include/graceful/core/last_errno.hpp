#pragma once
/// \file
/// errno as a std::error_code, the one way every layer turns a failed system call into
/// the error it returns.

#include <cerrno>
#include <system_error>

namespace graceful {

/// The current errno in std::generic_category (POSIX errno values are what that category
/// names; `last_errno() == std::errc::address_in_use` works as expected). Read it right
/// after the failing call: anything in between may change errno.
inline std::error_code last_errno() noexcept { return {errno, std::generic_category()}; }

} // namespace graceful
