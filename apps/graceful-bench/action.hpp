#pragma once
/// \file
/// The --at T --exec COMMAND action: a shell command run on its own thread at a fixed
/// offset from the start, so that a slow deploy never stalls the load.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "stats.hpp"

namespace graceful::bench {

/// What the action did, in times relative to the run start.
struct action_record {
  std::string command;
  std::chrono::nanoseconds at{};                  ///< requested offset
  std::optional<std::chrono::nanoseconds> started;  ///< when /bin/sh was spawned
  std::optional<std::chrono::nanoseconds> ended;    ///< when it exited
  std::optional<int> exit_code;                   ///< shell-style: code, or 128+signal
  std::string error;                              ///< spawn failure, if any
};

/// Runs `/bin/sh -c command` at `start + at` on a thread. The destructor waits for the
/// thread (and therefore the command): the report needs its end time.
class scheduled_action {
public:
  scheduled_action(std::string command, std::chrono::nanoseconds at, clock::time_point start);
  ~scheduled_action();
  scheduled_action(const scheduled_action&) = delete;
  scheduled_action& operator=(const scheduled_action&) = delete;

  /// Waits for the command to finish and returns what happened. With `cancel` (the run was
  /// interrupted) a command not started yet never will be.
  action_record finish(bool cancel);

private:
  void run(clock::time_point start);
  action_record record_;
  std::mutex mutex_;
  std::condition_variable cancelled_cv_;
  bool cancelled_ = false;
  std::thread thread_;
};

} // namespace graceful::bench
