#pragma once
/// \file
/// Starts and stops gperftools' CPU profiler, one profile at a time per process.
///
/// gperftools samples with SIGPROF from setitimer(ITIMER_PROF) and installs only that
/// handler: every other signal keeps its disposition (go-zero's profiler, by contrast,
/// resets all handlers). SIGPROF must therefore not be blocked: the lifecycle never blocks it.
/// Read a profile with `google-pprof --text <binary> <file>`.

#include <filesystem>
#include <optional>

#include <graceful/core/result.hpp>

namespace graceful::diag {

/// Starts writing a CPU profile to `file`. Fails with errc::profiler_start_failed when a
/// profile already runs or gperftools cannot open the file.
result<void> start_cpu_profile(const std::filesystem::path& file);

/// Stops the running profile and flushes it; returns its path. Fails with
/// errc::profiler_not_running when none runs.
result<std::filesystem::path> stop_cpu_profile();

/// The file of the running profile, if one runs.
std::optional<std::filesystem::path> running_cpu_profile();

} // namespace graceful::diag
