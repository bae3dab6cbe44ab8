#pragma once
/// \file
/// One line to plug a server into the process lifecycle:
///   auto http_reg = graceful::http::attach(server, lifecycle);

#include <atomic>
#include <chrono>
#include <memory>

#include <graceful/lifecycle/lifecycle.hpp>
#include <graceful/http/server.hpp>

namespace graceful::http {

/// How attach() plugs in.
struct attach_options {
  /// Add `GET /healthz` (200 while the process runs) and `GET /readyz` (200 while running,
  /// 503 from the moment draining begins) unless routes for them exist. Default true.
  bool health_routes = true;
  /// shutdown() is given the lifecycle deadline minus this margin; the margin is close()'s:
  /// it runs with the lifecycle deadline itself as its bound (server::close(deadline)), so
  /// it can never outlast the hook, and cutting what is left needs only a few ms unless a
  /// loop is blocked in a handler. Default 200 ms.
  std::chrono::milliseconds close_margin{200};
};

/// The registrations attach() made; destroying it unplugs the server.
struct [[nodiscard]] attachment {
  lifecycle::registration shutdown_hook;  ///< "http": shutdown(deadline), close() on timeout
  lifecycle::registration dump_section;   ///< "http connections" in the SIGUSR1 dump

  /// True once the shutdown deadline passed with connections still open, which close() then
  /// cut (server_stats::cut_requests / cut_connections say how many).
  bool cut_at_deadline() const noexcept { return cut_ && cut_->load(); }
  /// What the program should exit with: `run_code` (what lifecycle::run() returned), or the
  /// lifecycle's deadline_exit_code (1) when it is 0 but the deadline cut something, so that
  /// Kubernetes, systemd and supervisors see the loss: `return reg.exit_code(lc.run());`.
  int exit_code(int run_code) const noexcept {
    return run_code == 0 && cut_at_deadline() ? deadline_exit_code_ : run_code;
  }

private:
  friend attachment attach(server&, lifecycle::lifecycle&, attach_options);
  std::shared_ptr<std::atomic<bool>> cut_;  // shared with the shutdown hook
  int deadline_exit_code_ = 1;
};

/// Registers a shutdown hook (shutdown(deadline), then close() if it timed out, each logged),
/// a SIGUSR1 dump section listing connections and in-flight requests, and the health routes.
/// Call before the server serves (routes are fixed from then on).
attachment attach(server& s, lifecycle::lifecycle& lc, attach_options o = {});

} // namespace graceful::http
