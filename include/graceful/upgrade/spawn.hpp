#pragma once
/// \file
/// The OS seam the upgrader starts new processes through, so tests can fake spawning.

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <graceful/core/result.hpp>

namespace graceful::upgrade {

/// Everything needed to start the new process.
struct spawn_request {
  std::filesystem::path executable;  ///< absolute path, resolved at start-up
  std::vector<std::string> argv;     ///< argv[0] included, as the old process was started
  std::vector<std::string> env;      ///< the complete environment, "K=V"
  std::vector<int> fds;              ///< fds[i] becomes fd 3+i in the child; every other fd but 0-2 is closed
};

/// Starts a process; returns its pid. The upgrader owns the pid from then on (kills and
/// reaps it when it fails).
using spawn_function = std::function<result<pid_t>(const spawn_request&)>;

/// The default: posix_spawn with an empty signal mask, every signal at its default
/// disposition (a server that ignores SIGPIPE must not pass that on silently), fds placed
/// with dup2 file actions and every other fd closed (closefrom), so the child holds
/// exactly stdio plus `fds` whatever the rest of the program left open.
result<pid_t> posix_spawn_process(const spawn_request& r);

} // namespace graceful::upgrade
