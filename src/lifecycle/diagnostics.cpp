// SIGUSR1's thread dump (with the registered sections) and SIGUSR2's profiler toggle.
#include "impl.hpp"

#include <exception>

#include <fmt/format.h>

#include <graceful/diag/cpu_profiler.hpp>
#include <graceful/diag/errc.hpp>
#include <graceful/diag/thread_dump.hpp>

namespace graceful::lifecycle {

result<std::filesystem::path> lifecycle::impl::dump() {
  std::vector<diag::section> sections;
  for (auto& s : reg->sections.snapshot()) {
    std::lock_guard call(s->m);
    if (!s->fn) continue;
    try {
      sections.push_back({s->name, s->fn()});
    } catch (const std::exception& e) {
      sections.push_back({s->name, fmt::format("(section failed: {})", e.what())});
    } catch (...) {
      sections.push_back({s->name, "(section failed)"});
    }
  }
  return diag::write_thread_dump(opts.diag_dir, opts.program_name, sections);
}

result<std::filesystem::path> lifecycle::impl::toggle_profile(bool stop_only) {
  std::lock_guard lk(profiler_m);
  if (profile_path) {
    auto r = diag::stop_cpu_profile();
    profile_path.reset();
    profile_deadline = graceful::deadline::never();
    if (!r) return r;
    log->info("cpu profile stopped; written to {}", r.value().string());
    return r;
  }
  if (stop_only) return diag::errc::profiler_not_running;
  auto path = opts.diag_dir / diag::diag_file_name(opts.program_name, "cpu", "pprof");
  if (auto r = diag::start_cpu_profile(path); !r) return r.error();
  profile_path = path;
  profile_deadline = graceful::deadline::after(opts.profile_limit);
  log->info("cpu profile started: {} (stops by itself after {}s)", path.string(), opts.profile_limit.count());
  wake();
  return path;
}

} // namespace graceful::lifecycle
