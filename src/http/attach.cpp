#include <graceful/http/attach.hpp>

#include <spdlog/logger.h>

namespace graceful::http {

attachment attach(server& s, lifecycle::lifecycle& lc, attach_options o) {
  if (o.health_routes) {
    auto& r = s.routes();
    if (!r.contains("GET", "/healthz"))
      r.get("/healthz", [](context& c) { c.response.body = "ok\n"; });
    if (!r.contains("GET", "/readyz"))
      r.get("/readyz", [&lc](context& c) {
        // 503 from the moment draining begins, so load balancers stop sending new clients
        // while the drain delay still serves the ones already routed here.
        if (lc.ready()) {
          c.response.body = "ready\n";
        } else {
          c.response.status = 503;
          c.response.body = "draining\n";
        }
      });
  }
  attachment a;
  a.cut_ = std::make_shared<std::atomic<bool>>(false);
  a.deadline_exit_code_ = lc.config().deadline_exit_code;
  a.shutdown_hook = lc.on_shutdown("http", [&s, margin = o.close_margin, cut = a.cut_](graceful::deadline d) {
    auto t0 = std::chrono::steady_clock::now();
    auto at_start = s.stats();
    auto inner = d.is_never() ? d : graceful::deadline(d.when() - margin);
    auto r = s.shutdown(inner);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    if (r) {
      s.logger().info("http: shutdown complete in {} ms", ms);
      // A slow upload or a slow reader is cut by its connection at the deadline (which lets
      // the drain end): as lost as a request close() cuts.
      auto end = s.stats();
      if (end.cut_requests != at_start.cut_requests || end.cut_connections != at_start.cut_connections) {
        cut->store(true);
        s.logger().error("http: the shutdown deadline cut {} requests in flight on {} connections",
                         end.cut_requests - at_start.cut_requests, end.cut_connections - at_start.cut_connections);
      }
      return;
    }
    auto st = s.stats();
    s.logger().warn("http: shutdown: {} after {} ms ({} connections, {} requests in flight); closing them",
                 r.error().message(), ms, st.open_connections, st.in_flight_requests);
    // Whatever is open now is cut below: the stop lost something, and the exit status says so.
    cut->store(true);
    // close() gets what the margin kept back: it returns by the lifecycle's deadline at the
    // latest, even when a loop is blocked in a handler.
    s.close(d);
    auto after = s.stats();
    s.logger().error("http: the shutdown deadline cut {} requests in flight on {} connections",
                     after.cut_requests - at_start.cut_requests, after.cut_connections - at_start.cut_connections);
  });
  a.dump_section = lc.add_dump_section("http connections", [&s] {
    // The dump runs while serving: ask each loop, but never wait long for a busy one.
    return s.describe(graceful::deadline::after(std::chrono::milliseconds(200)));
  });
  return a;
}

} // namespace graceful::http
