#pragma once
// Test support: processes as /proc shows them, and programs that start processes of their own
// (upgrades): the test becomes the reaper of its orphaned descendants so it can check that none
// is left or a zombie.

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
/// The parent pid of `pid` (from /proc/PID/stat), or -1 when it is gone.
pid_t parent_of(pid_t pid);
/// How many children of `parent` are zombies (exited, not yet reaped).
int zombies_of(pid_t parent);
/// utime + stime of `pid` in clock ticks (from /proc/PID/stat), or -1 when gone.
long cpu_ticks(pid_t pid);
/// Resident set size of `pid` in KiB (VmRSS in /proc/PID/status), or -1.
long rss_kib(pid_t pid);
/// Raises this process's soft RLIMIT_NOFILE to at least `n` (up to the hard limit).
/// Returns the soft limit now in force.
unsigned long raise_nofile(unsigned long n);
/// The port of "127.0.0.1:PORT"-style text, or 0.
int port_of(const std::string& address);
/// The contents of a file, empty when missing.
std::string read_file(const std::string& path);

} // namespace graceful::test
