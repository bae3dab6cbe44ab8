#include <graceful/lifecycle/phase.hpp>

namespace graceful::lifecycle {

std::string_view to_string(phase p) noexcept {
  switch (p) {
    case phase::running: return "running";
    case phase::draining: return "draining";
    case phase::shutting_down: return "shutting_down";
    case phase::cleanup: return "cleanup";
    case phase::exited: return "exited";
  }
  return "unknown";
}

} // namespace graceful::lifecycle
