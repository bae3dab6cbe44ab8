#pragma once
// What a server's loops share: options, routes, the logger, and the counters that tell
// shutdown() when the last connection is gone. Every loop holds a reference to it.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <spdlog/logger.h>

#include <graceful/http/options.hpp>
#include <graceful/http/router.hpp>

namespace graceful::http::detail {

struct loop;

struct server_state {
  options opts;
  /// opts.logger, or spdlog's default logger when none was given.
  std::shared_ptr<spdlog::logger> logger;
  http::router routes;
  std::vector<std::unique_ptr<loop>> loops;
  std::atomic<bool> routes_frozen{false};
  /// 0 running, 1 shutting down, 2 closed.
  std::atomic<int> state{0};
  /// stop_accepting() was called: adopt() refuses new listeners.
  std::atomic<bool> accepting_stopped{false};
  /// Open connections plus running accept loops: shutdown is done when it reaches 0.
  std::atomic<std::int64_t> live{0};
  /// Open connections only (max_connections).
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> last_shutdown_ns{0};
  std::mutex m;
  std::condition_variable cv;

  spdlog::logger& log() const noexcept { return *logger; }
  void retain() noexcept { live.fetch_add(1, std::memory_order_relaxed); }
  void release() {
    // The last one out wakes shutdown(): event-driven, no polling.
    if (live.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lk(m);
      cv.notify_all();
    }
  }
  void notify_state() {
    std::lock_guard lk(m);
    cv.notify_all();
  }
};

/// A counter written by one loop thread and read by others (metrics): no locked instruction.
inline void bump(std::atomic<std::uint64_t>& c, std::int64_t d = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(d), std::memory_order_relaxed);
}

} // namespace graceful::http::detail
