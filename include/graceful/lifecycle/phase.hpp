#pragma once
/// \file
/// The phases a graceful process goes through, in order. A phase never goes backwards.

#include <string_view>

namespace graceful::lifecycle {

/// running -> draining -> shutting_down -> cleanup -> exited.
enum class phase : int {
  running = 0,        ///< serving; readiness true
  draining = 1,       ///< readiness false, still serving for the drain delay; drain hooks run
  shutting_down = 2,  ///< shutdown hooks run: servers stop accepting and finish in-flight work
  cleanup = 3,        ///< cleanup hooks run, only after every shutdown hook has returned
  exited = 4,         ///< the stop sequence is over; run() returns
};

/// "running", "draining", "shutting_down", "cleanup", "exited".
std::string_view to_string(phase p) noexcept;

} // namespace graceful::lifecycle
