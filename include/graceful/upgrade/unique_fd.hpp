#pragma once
/// \file
/// graceful::upgrade::unique_fd: the core owner type under the name the upgrade layer
/// has always used (kept so that existing code compiles unchanged).

#include <graceful/core/unique_fd.hpp>

namespace graceful::upgrade {

/// Owns one fd; see graceful::unique_fd.
using unique_fd = graceful::unique_fd;

} // namespace graceful::upgrade
