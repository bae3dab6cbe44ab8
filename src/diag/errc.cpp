#include <graceful/diag/errc.hpp>

namespace graceful::diag {
namespace {

class category final : public std::error_category {
public:
  const char* name() const noexcept override { return "graceful.diag"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::dump_signal_in_use: return "the thread dump signal already has another handler";
      case errc::dump_in_progress: return "another thread dump is in progress";
      case errc::profiler_start_failed: return "the CPU profiler could not start";
      case errc::profiler_not_running: return "no CPU profile is running";
      case errc::profiler_unavailable: return "built without the CPU profiler (GRACEFUL_WITH_PROFILER=OFF)";
    }
    return "unknown graceful.diag error";
  }
};

} // namespace

const std::error_category& diag_category() noexcept {
  static const category c;
  return c;
}

} // namespace graceful::diag
