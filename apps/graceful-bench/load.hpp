#pragma once
/// \file
/// The load engine: worker threads, each with its own io_context and its share of the
/// connections, driving requests closed-loop or at a fixed rate until the run ends.

#include <atomic>
#include <string>

#include "options.hpp"
#include "stats.hpp"

namespace graceful::bench {

/// Set (e.g. from a SIGINT handler) to stop starting new requests; in-flight ones finish.
extern std::atomic<bool> stop_requested;

/// What a run produced.
struct run_result {
  run_stats stats;                   ///< merged over workers
  clock::time_point start;           ///< the common start of all workers
  std::chrono::nanoseconds load_end{};  ///< when the last worker stopped, from start
  unsigned threads = 0;              ///< worker threads actually used
  std::string error;                 ///< set when the target could not even be resolved
};

/// Resolves the target and runs the load. `on_start` is called with the common start time
/// before any request is sent (the action is scheduled from it).
template <class F> run_result run_load(const bench_options& o, F&& on_start);

/// Non-template core of run_load.
run_result run_load_impl(const bench_options& o, void (*on_start)(void*, clock::time_point), void* ctx);

template <class F> run_result run_load(const bench_options& o, F&& on_start) {
  return run_load_impl(
      o, [](void* c, clock::time_point t) { (*static_cast<std::remove_reference_t<F>*>(c))(t); },
      &on_start);
}

} // namespace graceful::bench
