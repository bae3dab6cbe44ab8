#pragma once
/// \file
/// Process relations read from /proc, for reaping orphans and attributing notify messages.

#include <vector>

#include <sys/types.h>

namespace graceful::run {

/// The parent pid of `pid` from /proc/PID/stat; -1 when it is gone.
pid_t parent_of(pid_t pid);
/// True when `pid` is `ancestor` or one of its descendants (at most 64 levels up).
bool descends_from(pid_t pid, pid_t ancestor);
/// Every live process whose parent is `parent` (zombies included).
std::vector<pid_t> children_of(pid_t parent);

} // namespace graceful::run
