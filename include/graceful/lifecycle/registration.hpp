#pragma once
/// \file
/// RAII handle for anything registered with a lifecycle (hooks, signal handlers, dump
/// sections): destroying it unregisters.

#include <functional>
#include <utility>

namespace graceful::lifecycle {

/// Unregisters on destruction. Move-only. A default-constructed handle holds nothing.
/// Unregistering does not interrupt a callback already running: it waits for it to return
/// (so the callback never outlives the object it points into) and keeps it from being
/// called again. A callback may drop its own registration; do not hold a lock the callback
/// needs while unregistering. A registration may outlive its lifecycle (it then does nothing).
class [[nodiscard]] registration {
public:
  registration() noexcept = default;
  explicit registration(std::function<void()> unregister) noexcept : unregister_(std::move(unregister)) {}
  registration(registration&& o) noexcept : unregister_(std::exchange(o.unregister_, nullptr)) {}
  registration& operator=(registration&& o) noexcept {
    if (this != &o) { reset(); unregister_ = std::exchange(o.unregister_, nullptr); }
    return *this;
  }
  registration(const registration&) = delete;
  registration& operator=(const registration&) = delete;
  ~registration() { reset(); }

  /// Unregisters now.
  void reset() noexcept {
    if (auto f = std::exchange(unregister_, nullptr)) f();
  }
  /// Keeps the registration for the lifecycle's whole life.
  void release() noexcept { unregister_ = nullptr; }
  /// True while it still holds a registration.
  explicit operator bool() const noexcept { return static_cast<bool>(unregister_); }

private:
  std::function<void()> unregister_;
};

} // namespace graceful::lifecycle
