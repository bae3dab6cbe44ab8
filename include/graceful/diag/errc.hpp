#pragma once
/// \file
/// Errors of the diagnostics module (stack dumps, CPU profiles).

#include <string>
#include <system_error>
#include <type_traits>

namespace graceful::diag {

/// Why a dump or a profile could not be made.
enum class errc {
  dump_signal_in_use = 1,  ///< another handler already owns the real-time signal dumps use
  dump_in_progress,        ///< another thread is dumping right now; dumps do not overlap
  profiler_start_failed,   ///< gperftools refused to start (file not writable, already on)
  profiler_not_running,    ///< stop asked while no profile runs
  profiler_unavailable,    ///< graceful was built without gperftools (GRACEFUL_WITH_PROFILER=OFF)
};

/// The category of graceful::diag::errc ("graceful.diag").
const std::error_category& diag_category() noexcept;

/// Makes errc usable as std::error_code.
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), diag_category()};
}

} // namespace graceful::diag

template <> struct std::is_error_code_enum<graceful::diag::errc> : std::true_type {};
