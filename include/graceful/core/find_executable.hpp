#pragma once
/// \file
/// $PATH lookup, the one way graceful finds a program by name (the upgrader re-executing
/// itself, graceful-run starting its worker).

#include <filesystem>
#include <string_view>

#include <graceful/core/result.hpp>

namespace graceful {

/// Where execvp(3) would find `name`:
///  - a name containing '/' is returned unchanged (execvp does not search for it either);
///  - otherwise each directory of $PATH in order (an empty entry is the current directory),
///    the first regular file this process may execute (access X_OK);
///  - with $PATH unset, confstr(_CS_PATH), which is what glibc's execvp searches then
///    ("/bin:/usr/bin"; not /usr/local/bin, so a program started with an empty environment
///    is found again where it was found the first time).
/// Errors: std::errc::no_such_file_or_directory (empty name, or found nowhere).
result<std::filesystem::path> find_executable(std::string_view name);

} // namespace graceful
