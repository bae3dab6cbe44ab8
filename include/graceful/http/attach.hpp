#pragma once
/// \file
/// One line to plug a server into the process lifecycle:
///   auto http_reg = graceful::http::attach(server, lifecycle);

#include <chrono>

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
};

/// Registers a shutdown hook (shutdown(deadline), then close() if it timed out, each logged),
/// a SIGUSR1 dump section listing connections and in-flight requests, and the health routes.
/// Call before the server serves (routes are fixed from then on).
attachment attach(server& s, lifecycle::lifecycle& lc, attach_options o = {});

} // namespace graceful::http
