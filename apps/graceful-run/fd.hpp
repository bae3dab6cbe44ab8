#pragma once
/// \file
/// unique_fd: the one owner of a file descriptor (the upgrade layer's).

#include <graceful/upgrade/unique_fd.hpp>

namespace graceful::run {

/// Owns a file descriptor and closes it on destruction. Move-only.
using unique_fd = graceful::upgrade::unique_fd;

} // namespace graceful::run
