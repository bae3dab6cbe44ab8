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

/// What a run of restarts_under_load saw.
struct restarts_seen {
  bool done = false;      ///< every restart completed (else `error` says which step timed out)
  std::string error;
  long keep_alive_failures = 0, close_failures = 0;
  std::string summary;    ///< both loads' counts, for the test's output
};

/// The product's promise, as the graceful-run tests check it: under keep-alive and
/// Connection: close load (4 connections each) on `port`, `n` SIGHUPs to graceful-run, each
/// once the previous upgrade completed ("upgrade complete" in its log) and the new worker
/// took load (20 more answers). Counts every failed request of both loads.
restarts_seen restarts_under_load(runner& r, int port, int n);

} // namespace graceful::test
