#pragma once
/// \file
/// One line to plug a grpc::Server into the process lifecycle:
///   auto grpc_reg = graceful::grpc::attach(*server, *acceptor, lifecycle);

#include <chrono>
#include <memory>
#include <vector>

#include <graceful/lifecycle/lifecycle.hpp>

namespace spdlog { class logger; }

namespace graceful::upgrade { class upgrader; }

namespace grpc {
class Server;
class ServerCompletionQueue;
} // namespace grpc

namespace graceful::grpc {

class acceptor;

/// How attach() plugs in, each default beside it.
struct attach_options {
  /// When draining begins, the server's health service (grpc.health.v1.Health, from
  /// grpc::EnableDefaultHealthCheckService(true) or an explicit one) reports NOT_SERVING for
  /// every service at once, while calls are still served for the drain delay: a load
  /// balancer or client-side health check stops picking this process first. Default true.
  /// Without a health service this logs one warning at attach().
  bool health = true;
  /// Server::Shutdown gets the lifecycle deadline minus this margin, so that calls cut at
  /// the deadline get their status written and their handlers return before the lifecycle
  /// gives up on the hook (and exits). Default 200 ms.
  std::chrono::milliseconds cancel_margin{200};
  /// The upgrader that may hand this process's sockets over (null: none). After a hand-over
  /// the new process serves new connections (and with sockets from systemd or graceful-run,
  /// which keep them open, the next process will), so the shutdown first lets this process's
  /// connections reach the acceptor's max_connection_age (gRPC sends each a graceful GOAWAY
  /// and its client reconnects to the new process, no call failed) and only then calls
  /// Server::Shutdown, whose own GOAWAY would cancel the calls racing it. Waits at most
  /// 1.1 x max_connection_age + 250 ms (gRPC's jitter is +-10%), never past the deadline.
  upgrade::upgrader* upgrader = nullptr;
  /// Completion queues of an async server (from ServerBuilder::AddCompletionQueue), shut
  /// down once the server is: their pollers' Next() returns false and they can exit.
  /// Default none (a sync or callback server has none of its own).
  std::vector<::grpc::ServerCompletionQueue*> completion_queues{};
  /// Also drain those queues here (discard the remaining events until Next() returns
  /// false, bounded by the deadline), for programs whose pollers already stopped. Default
  /// false: the program's pollers drain them, and two pollers would steal each other's tags.
  bool drain_completion_queues = false;
  /// Logger for one line per event (health, the shutdown's progress). Null (default):
  /// spdlog's default logger, as the other layers' options do.
  std::shared_ptr<spdlog::logger> logger{};
};

/// The registrations attach() made; destroying it unplugs the server.
class [[nodiscard]] attachment {
public:
  attachment() = default;
  attachment(attachment&&) noexcept = default;
  attachment& operator=(attachment&&) noexcept = default;

  /// True once the shutdown deadline cut calls in flight (errc::calls_cancelled). A
  /// program returns non-zero then, as for HTTP: `return reg.exit_code(lc.run());`.
  bool calls_cancelled() const noexcept;
  /// `run_code` (what lifecycle::run() returned), or the lifecycle's deadline_exit_code (1)
  /// when it is 0 but the deadline cut calls.
  int exit_code(int run_code) const noexcept;

  lifecycle::registration drain_hook;     ///< "grpc: health NOT_SERVING"
  lifecycle::registration shutdown_hook;  ///< "grpc": stop accepting, Server::Shutdown(deadline), queues
  lifecycle::registration dump_section;   ///< "grpc" in the SIGUSR1 dump (with an acceptor)

private:
  friend attachment attach(::grpc::Server&, acceptor*, lifecycle::lifecycle&, attach_options);
  struct state;
  std::shared_ptr<state> state_;
};

/// Plugs `s`, served by `a` (may be null for a server with only its own ports), into `lc`:
/// draining -> health NOT_SERVING; shutting down -> graceful::grpc::shutdown(s, deadline,
/// a), then the completion queues. Call after BuildAndStart. `s`, `a` and the queues must
/// outlive the attachment.
attachment attach(::grpc::Server& s, acceptor* a, lifecycle::lifecycle& lc, attach_options o = {});

/// attach(s, &a, lc, o).
inline attachment attach(::grpc::Server& s, acceptor& a, lifecycle::lifecycle& lc, attach_options o = {}) {
  return attach(s, &a, lc, std::move(o));
}

/// attach(s, nullptr, lc, o): for a server that listens on its own ports (AddListeningPort).
inline attachment attach(::grpc::Server& s, lifecycle::lifecycle& lc, attach_options o = {}) {
  return attach(s, nullptr, lc, std::move(o));
}

} // namespace graceful::grpc
