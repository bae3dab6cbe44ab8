#pragma once
// Test support for programs that start processes of their own (upgrades): the test becomes
// the reaper of its orphaned descendants so it can check that none is left or a zombie.

#include <string>
#include <vector>

#include <sys/types.h>

#include <graceful/core/deadline.hpp>

namespace graceful::test {

/// PR_SET_CHILD_SUBREAPER on this process: descendants whose parent exits become our
/// children, so they can be waited for (and must be, or they stay zombies).
void become_subreaper();
/// The state letter of `pid` in /proc/PID/stat ('R', 'S', 'Z', ...), or 0 when it is gone.
char process_state(pid_t pid);
/// True while `pid` exists and is not a zombie.
bool alive(pid_t pid);
/// The pids whose parent is `parent`.
std::vector<pid_t> children_of(pid_t parent);
/// Reaps every child of this process that has exited; returns how many.
int reap_exited();
/// SIGKILLs `pid` and reaps it if it is our child (directly or as subreaper).
void kill_and_reap(pid_t pid);
/// Waits until `pid` has exited (and reaps it if ours) or `d` passes.
bool wait_gone(pid_t pid, graceful::deadline d);
/// Connects to 127.0.0.1:port (TCP), sends `request` (if any) and reads until EOF (5 s at
/// most). Empty string when the connection was refused or reset: a failure a user would see.
std::string fetch(int port, const std::string& request = "");
/// fetch() with "GET <path> HTTP/1.1" and Connection: close.
std::string http_get(int port, const std::string& path = "/");
/// The port of "127.0.0.1:PORT"-style text, or 0.
int port_of(const std::string& address);
/// The contents of a file, empty when missing.
std::string read_file(const std::string& path);

} // namespace graceful::test
