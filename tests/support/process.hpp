#pragma once
// Test support: run a child process with captured output, wait for it with a deadline,
// send it signals. Tests observe programs from the outside, as a user or supervisor would.

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <graceful/core/deadline.hpp>

namespace graceful::test {

/// Where the project's programs were built (bin/ of the build tree).
std::string bin_dir();
/// bin_dir() + "/" + name.
std::string bin(const std::string& name);

/// A child process whose stdout+stderr go to a file the test can read at any time.
/// The destructor SIGKILLs and reaps it if it is still running: no test leaks processes.
class child {
public:
  struct spec {
    std::vector<std::string> argv;
    std::vector<std::string> env_add{};   ///< "K=V" added to the environment
    std::vector<int> keep_fds{};          ///< fds passed through at the same number
    bool new_process_group = true;
  };
  explicit child(spec s);
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  pid_t pid() const noexcept { return pid_; }
  /// Sends `sig` to the child.
  void signal(int sig) const;
  /// Waits for exit until `d`. Returns the exit status as a shell reports it
  /// (code, or 128+signal), or nullopt on timeout.
  std::optional<int> wait(graceful::deadline d);
  /// True once it has been reaped.
  bool exited() const noexcept { return status_.has_value(); }
  /// Everything it wrote to stdout and stderr so far.
  std::string output() const;
  /// Waits until output() contains `needle` or `d` passes.
  bool wait_for_output(const std::string& needle, graceful::deadline d) const;

private:
  pid_t pid_ = -1;
  std::string out_path_;
  std::optional<int> status_;
};

/// Number of open fds of a process (from /proc/PID/fd).
int count_fds(pid_t pid);
/// The absolute path of `name` on $PATH (child uses execve, which does not search PATH), or
/// "" when it is not installed.
std::string find_program(const std::string& name);
/// Every number N in `text` written as "<before>N<after>", in order (pids in a log).
std::vector<long> numbers_in(const std::string& text, const std::string& before, const std::string& after = "");
/// numbers_in() as pids: the pids a log names, e.g. pids_in(log, "worker ", " ready").
std::vector<pid_t> pids_in(const std::string& text, const std::string& before, const std::string& after);
/// How often `needle` occurs in `text`.
int count_of(const std::string& text, const std::string& needle);
/// Waits until `c` has printed `before` followed by a number and returns that number (the
/// port a program logged, e.g. graceful-server's "(port " or echo-server's
/// "listening on 127.0.0.1:"), or -1 when it did not within `d`.
int logged_port(const child& c, const std::string& before, graceful::deadline d);
/// Polls `pred` every 10 ms until true or `d` passes.
template <class Pred> bool eventually(Pred pred, graceful::deadline d) {
  while (!pred()) {
    if (d.expired()) return false;
    struct timespec ts{0, 10'000'000};
    nanosleep(&ts, nullptr);
  }
  return true;
}

} // namespace graceful::test
