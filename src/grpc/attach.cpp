#include <graceful/grpc/attach.hpp>

#include <atomic>
#include <chrono>

#include <grpcpp/completion_queue.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <spdlog/spdlog.h>

#include <graceful/grpc/acceptor.hpp>
#include <graceful/grpc/shutdown.hpp>
#include <graceful/upgrade/upgrader.hpp>

namespace graceful::grpc {

struct attachment::state {
  std::atomic<bool> cut{false};
  int deadline_exit_code = 1;
};

bool attachment::calls_cancelled() const noexcept { return state_ && state_->cut.load(); }

int attachment::exit_code(int run_code) const noexcept {
  return run_code == 0 && calls_cancelled() ? state_->deadline_exit_code : run_code;
}

namespace {

using ms = std::chrono::milliseconds;

long long since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - t0).count();
}

/// Shuts down the queues after the server; optionally discards what is left in them.
void finish_queues(const attach_options& o, graceful::deadline d, spdlog::logger& log) {
  for (auto* cq : o.completion_queues) cq->Shutdown();
  if (!o.drain_completion_queues) return;
  for (auto* cq : o.completion_queues) {
    void* tag = nullptr;
    bool ok = false;
    for (;;) {
      auto wall = d.is_never() ? std::chrono::system_clock::time_point::max()
                               : std::chrono::system_clock::now() +
                                     std::chrono::duration_cast<std::chrono::system_clock::duration>(d.remaining());
      auto st = d.is_never() ? (cq->Next(&tag, &ok) ? ::grpc::CompletionQueue::GOT_EVENT
                                                    : ::grpc::CompletionQueue::SHUTDOWN)
                             : cq->AsyncNext(&tag, &ok, wall);
      if (st == ::grpc::CompletionQueue::SHUTDOWN) break;
      if (st == ::grpc::CompletionQueue::TIMEOUT) {
        log.warn("grpc: a completion queue still had events at the deadline");
        return;
      }
    }
  }
}

} // namespace

attachment attach(::grpc::Server& s, acceptor* a, lifecycle::lifecycle& lc, attach_options o) {
  attachment r;
  r.state_ = std::make_shared<attachment::state>();
  r.state_->deadline_exit_code = lc.config().deadline_exit_code;
  // Held by the hooks: the logger outlives attach()'s caller's copy of the options.
  std::shared_ptr<spdlog::logger> logger = o.logger ? o.logger : spdlog::default_logger();
  if (o.health) {
    if (!s.GetHealthCheckService())
      logger->warn("grpc: no health service (call grpc::EnableDefaultHealthCheckService(true) before "
                   "BuildAndStart): draining will not be visible to health checks");
    r.drain_hook = lc.on_drain("grpc: health NOT_SERVING", [&s, logger](graceful::deadline) {
      // Every service at once, while calls are still served: clients and load balancers
      // that health-check move away during the drain delay instead of at the GOAWAY.
      if (auto* h = s.GetHealthCheckService()) {
        h->SetServingStatus(false);
        logger->info("grpc: health NOT_SERVING (draining)");
      }
    });
  }
  r.shutdown_hook = lc.on_shutdown("grpc", [&s, a, o, st = r.state_, logger](graceful::deadline d) {
    auto t0 = std::chrono::steady_clock::now();
    auto inner = d.is_never() ? d : graceful::deadline(d.when() - o.cancel_margin);
    // Someone else serves the socket after us when this process handed it over, or when it
    // came from systemd / graceful-run, which keep it open for the next process. Then the
    // clients can leave by max-age GOAWAYs, which fail no call, before Shutdown's GOAWAY,
    // which cancels the calls racing it.
    bool successor = o.upgrader && (o.upgrader->current_state() == upgrade::state::handed_over ||
                                    o.upgrader->inherited_from() == upgrade::origin::systemd);
    if (a && successor && a->options().max_connection_age.count() > 0) {
      a->stop();
      auto age = a->options().max_connection_age;
      auto until = earliest(inner, graceful::deadline::after(age * 11 / 10 + ms(250)));
      auto open = a->stats().open_connections;
      logger->info("grpc: {} connections move to the new process as they reach their max age ({} ms)",
                   open, age.count());
      auto left = a->wait_connections_closed(until);
      logger->info("grpc: {} of {} connections closed in {} ms; {} still open (streams in flight)", open - std::min(open, left),
                   open, since(t0), left);
    }
    auto res = shutdown(s, inner, a);
    if (res) {
      logger->info("grpc: shutdown complete in {} ms", since(t0));
    } else {
      st->cut.store(true);
      logger->warn("grpc: shutdown: {} after {} ms", res.error().message(), since(t0));
    }
    finish_queues(o, d, *logger);
  });
  if (a)
    r.dump_section = lc.add_dump_section("grpc", [a] { return a->describe() + "\n"; });
  return r;
}

} // namespace graceful::grpc
