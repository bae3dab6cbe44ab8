#pragma once
/// \file
/// PID files written atomically by whichever process is the live one, so that
/// `kill -HUP $(cat pidfile)` always reaches the process that serves.

#include <filesystem>

#include <sys/types.h>
#include <unistd.h>

#include <graceful/core/result.hpp>

namespace graceful::upgrade {

/// Writes "<pid>\n" to `path` atomically: a temporary file in the same directory
/// (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0644, fsync) renamed over `path`. A reader sees the old
/// pid or the new one, never a partial file. A symlink at `path` is replaced, never written
/// through (rename(2) replaces the link itself). An unwritable directory is an error the
/// caller logs; it should keep serving. Holds flock(2) on the directory while it writes
/// (waiting at most 2 s for another writer, then writing anyway), so a concurrent
/// remove_pid_file_if_owned never sees it half done.
result<void> write_pid_file(const std::filesystem::path& path, pid_t pid = ::getpid());

/// The pid in `path`; std::errc::invalid_argument when the content is not a pid.
/// Does not follow a symlink at `path` (O_NOFOLLOW).
result<pid_t> read_pid_file(const std::filesystem::path& path);

/// Removes `path` if it still holds `pid` (a process that handed over must not remove its
/// successor's file). Returns whether it removed it. Read, compare and unlink happen under
/// flock(2) on the directory, so a successor's write_pid_file cannot slip in between and
/// lose its file; std::errc::timed_out (nothing removed) if the lock is not had within 2 s.
result<bool> remove_pid_file_if_owned(const std::filesystem::path& path, pid_t pid = ::getpid());

} // namespace graceful::upgrade
