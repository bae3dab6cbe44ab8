#pragma once
// The demo routes of graceful-server (see routes.cpp). Kept apart from main.cpp so that
// main reads as the start-up sequence only.

#include <graceful/http/router.hpp>
#include <graceful/http/server.hpp>
#include <graceful/lifecycle/lifecycle.hpp>

namespace graceful_server {

/// What handlers may look at. `server` is set once it exists (before serving).
struct app {
  graceful::lifecycle::lifecycle& lifecycle;
  graceful::http::server* server = nullptr;
};

/// GET /, GET /slow?ms=N, POST /echo, GET /stream?chunks=N&ms=M, GET /metrics.
/// (/healthz and /readyz come from graceful::http::attach.)
graceful::http::router make_routes(app& a);

} // namespace graceful_server
