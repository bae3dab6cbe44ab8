#include <graceful/diag/cpu_profiler.hpp>

#include <mutex>

#ifndef GRACEFUL_WITH_PROFILER
#define GRACEFUL_WITH_PROFILER 1
#endif
#if GRACEFUL_WITH_PROFILER
#include <gperftools/profiler.h>
#else
// Built without gperftools: starting a profile is refused at the API edge.
namespace {
int ProfilerStart(const char*) { return 0; }
void ProfilerStop() {}
} // namespace
#endif

#include <graceful/diag/errc.hpp>

namespace graceful::diag {
namespace {
// gperftools keeps one profiler per process; this mirrors that state.
std::mutex g_mutex;
std::optional<std::filesystem::path> g_running;
} // namespace

result<void> start_cpu_profile(const std::filesystem::path& file) {
  std::lock_guard lk(g_mutex);
  if (g_running) return errc::profiler_start_failed;
  if (!GRACEFUL_WITH_PROFILER) return errc::profiler_unavailable;
  if (ProfilerStart(file.c_str()) == 0) return errc::profiler_start_failed;
  g_running = file;
  return ok();
}

result<std::filesystem::path> stop_cpu_profile() {
  std::lock_guard lk(g_mutex);
  if (!g_running) return errc::profiler_not_running;
  // ProfilerStop flushes the samples and closes the file; the timer stops first.
  ProfilerStop();
  auto p = std::move(*g_running);
  g_running.reset();
  return p;
}

std::optional<std::filesystem::path> running_cpu_profile() {
  std::lock_guard lk(g_mutex);
  return g_running;
}

} // namespace graceful::diag
