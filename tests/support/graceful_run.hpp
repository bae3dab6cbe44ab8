#pragma once
// Test support: graceful-run started by a test, read through its log.

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "process.hpp"
#include "processes.hpp"

namespace graceful::test {

/// graceful-run started by a test; the destructor stops it and kills any worker it logged,
/// so a failing test leaves no process behind.
class runner {
public:
  runner(std::vector<std::string> run_args, std::vector<std::string> command, std::vector<int> keep_fds = {});
  ~runner();
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  child& proc() { return *proc_; }
  pid_t pid() const { return proc_->pid(); }
  std::string output() const { return proc_->output(); }
  bool wait_for(const std::string& needle, std::chrono::milliseconds d = std::chrono::seconds(5)) const;
  /// Waits until `needle` occurs `n` times in the log.
  bool wait_count(const std::string& needle, int n, std::chrono::milliseconds d = std::chrono::seconds(5)) const;
  /// The port graceful-run logged for listener `name` ("listening NAME=127.0.0.1:PORT"), -1 if none in 5 s.
  int port(const std::string& name) const;
  /// Pids logged as ready, in order.
  std::vector<pid_t> ready_workers() const { return pids_in(output(), "worker ", " ready"); }

private:
  std::optional<child> proc_;
};

} // namespace graceful::test
