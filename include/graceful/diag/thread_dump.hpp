#pragma once
/// \file
/// A symbolized stack trace of every thread of the process, taken while it keeps running.
///
/// How: each thread listed in /proc/self/task gets a real-time signal (tgkill); its handler
/// records the return addresses with boost::stacktrace::safe_dump_to, which is
/// async-signal-safe; the calling thread then symbolizes them with Boost.Stacktrace's
/// libbacktrace backend, which reads the DWARF and symbol tables (static functions get
/// names too, no -rdynamic needed). A thread that does not answer within the deadline
/// (it blocks the signal, or sits in an uninterruptible kernel wait) is listed without
/// frames. The signal interrupts blocking system calls in the dumped threads exactly like
/// any other handled signal: code must already retry on EINTR (Asio, glibc stdio do).

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <graceful/core/deadline.hpp>
#include <graceful/core/result.hpp>

namespace graceful::diag {

/// The real-time signal used to interrupt threads for a dump (SIGRTMIN + 6). Its handler
/// is installed on the first dump and stays installed; it does nothing between dumps.
int dump_signal() noexcept;

/// One thread's stack.
struct thread_stack {
  pid_t tid = 0;              ///< kernel thread id
  std::string name;           ///< /proc/self/task/<tid>/comm
  std::vector<std::string> frames;  ///< innermost first, "function at file:line"
  bool captured = false;      ///< false when the thread did not answer in time
  bool blocks_signal = false; ///< the thread blocks dump_signal() (so was not asked)
};

/// Captures the stack of every thread of the process, waiting for answers until `d`.
/// Fails with errc::dump_signal_in_use if someone else handles dump_signal(), and with
/// errc::dump_in_progress if another thread is capturing right now.
result<std::vector<thread_stack>> capture_all_threads(graceful::deadline d);

/// A named block of text appended to a dump (e.g. the HTTP server's in-flight requests).
struct section {
  std::string name;  ///< heading
  std::string text;  ///< body
};

/// `<program>-<pid>-<kind>-<MMDDhhmmss>.<ext>`, local time, go-zero's "0102150405" format.
std::string diag_file_name(std::string_view program, std::string_view kind, std::string_view ext,
                           std::chrono::system_clock::time_point when = std::chrono::system_clock::now());

/// Renders threads and sections as the text of a dump file.
std::string format_dump(std::string_view program, const std::vector<thread_stack>& threads,
                        const std::vector<section>& sections);

/// Captures every thread (answers awaited for up to 1 s) and writes
/// `<program>-<pid>-threads-<MMDDhhmmss>.dump` into `dir`, followed by `sections`.
/// Returns the path written.
result<std::filesystem::path> write_thread_dump(const std::filesystem::path& dir, std::string_view program,
                                                const std::vector<section>& sections);

} // namespace graceful::diag
