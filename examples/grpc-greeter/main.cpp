// grpc-greeter: a gRPC C++ server whose restarts and upgrades lose no call.
//
// What graceful adds to an ordinary grpc::ServerBuilder program (marked GRACEFUL below):
//   1. a lifecycle, first thing in main, before any thread (gRPC's included);
//   2. the listening sockets from graceful::upgrade (inherited on SIGHUP, from systemd, from
//      --takeover, or bound from --listen) served through graceful::grpc::acceptor instead of
//      AddListeningPort;
//   3. graceful::grpc::attach: health NOT_SERVING while draining, then stop accepting and
//      Server::Shutdown(deadline);
//   4. the upgrader wired to SIGHUP, ready() once serving, and lc.run().
//
//   grpc-greeter --listen 127.0.0.1:50051 --pid-file greeter.pid --drain-delay 5s
//   kill -HUP $(cat greeter.pid)    # zero-downtime upgrade to the binary now at this path
//   kill -TERM $(cat greeter.pid)   # drain and exit
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <graceful/core/errc.hpp>
#include <graceful/grpc/acceptor.hpp>
#include <graceful/grpc/attach.hpp>
#include <graceful/lifecycle/lifecycle.hpp>
#include <graceful/upgrade/upgrader.hpp>

#include "cli/service_flags.hpp"
#include "greeter.grpc.pb.h"

namespace {

/// The Greeter service. Replies carry this process's pid, so clients see who answered.
class greeter_service final : public greeter::Greeter::Service {
public:
  ::grpc::Status SayHello(::grpc::ServerContext*, const greeter::HelloRequest* req,
                          greeter::HelloReply* reply) override {
    reply->set_message("Hello " + req->name());
    reply->set_pid(::getpid());
    return ::grpc::Status::OK;
  }

  ::grpc::Status SayHelloStream(::grpc::ServerContext* ctx, const greeter::HelloStreamRequest* req,
                                ::grpc::ServerWriter<greeter::HelloReply>* w) override {
    if (req->count() > 100'000 || req->interval_ms() > 60'000)
      return {::grpc::StatusCode::INVALID_ARGUMENT, "count is at most 100000, interval_ms at most 60000"};
    for (std::uint32_t i = 0; i < req->count(); ++i) {
      if (i > 0 && !sleep_unless_cancelled(ctx, std::chrono::milliseconds(req->interval_ms())))
        return {::grpc::StatusCode::CANCELLED, "cancelled"};
      greeter::HelloReply r;
      r.set_message("Hello " + req->name());
      r.set_pid(::getpid());
      r.set_index(i);
      if (!w->Write(r)) return {::grpc::StatusCode::CANCELLED, "the client went away"};
    }
    return ::grpc::Status::OK;
  }

private:
  /// The sync API has no cancellation callback: look every 10 ms, so a call cancelled at
  /// the shutdown deadline returns within the attach margin.
  static bool sleep_unless_cancelled(::grpc::ServerContext* ctx, std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      if (ctx->IsCancelled()) return false;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(10), until - std::chrono::steady_clock::now()));
    }
    return !ctx->IsCancelled();
  }
};

struct config {
  graceful::cli::service_flags service;  // --drain-delay, --shutdown-timeout, --pid-file, ... (src/cli)
  std::vector<std::string> listen{"127.0.0.1:50051"};
  std::chrono::milliseconds max_connection_age{10'000};  // --max-connection-age, default 10s
};

/// Fills `cfg`; returns -1 to go on, or the exit code (0 after --help/--version, 2 on errors).
int parse_flags(int argc, char** argv, config& cfg) {
  constexpr std::string_view program = "grpc-greeter";
  CLI::App app{"grpc-greeter: a gRPC Greeter server that drains, restarts and upgrades without losing a call"};
  app.set_version_flag("--version", std::string("grpc-greeter ") + GRACEFUL_VERSION);
  std::string max_age = "10s";
  std::vector<std::string> listen;
  app.add_option("--listen", listen, "ADDR:PORT to listen on (repeatable; default 127.0.0.1:50051)");
  cfg.service.add_to(app, {.program = std::string(program),
                           .drain_delay_help = "keep serving this long with health NOT_SERVING before shutting down (default 0)"});
  app.add_option("--max-connection-age", max_age,
                 "gRPC sends each connection a graceful GOAWAY after this long; after an upgrade the old "
                 "process waits for its connections to age out before shutting down (default 10s; 0 = never)");
  if (int code = graceful::cli::parse(app, argc, argv, program); code >= 0) return code;
  if (auto bad = cfg.service.check()) return graceful::cli::bad_flag(program, *bad);
  auto a = graceful::cli::duration_flag(max_age, false);
  if (!a) return graceful::cli::bad_flag(program, "--max-connection-age: not a duration: '" + max_age + "' (try 10s)");
  cfg.max_connection_age = *a;
  if (!listen.empty()) cfg.listen = listen;
  return -1;
}

/// The name a --listen socket travels under between versions (and in a systemd socket unit's
/// FileDescriptorName=): "grpc" for the first, "grpc-2", "grpc-3"... for the others.
std::string listener_name(std::size_t i) { return i == 0 ? "grpc" : "grpc-" + std::to_string(i + 1); }

} // namespace

int main(int argc, char** argv) {
  config cfg;
  if (int code = parse_flags(argc, argv, cfg); code >= 0) return code;
  spdlog::set_level(cfg.service.log_level);

  // GRACEFUL 1: the lifecycle first, so every thread (gRPC's too) inherits its signal mask.
  graceful::lifecycle::lifecycle lc(cfg.service.lifecycle_options());

  // GRACEFUL 2: the sockets, inherited when there are any, bound otherwise.
  auto uo = cfg.service.upgrade_options();
  auto up = graceful::upgrade::upgrader::create(uo);
  if (!up) {
    spdlog::error("cannot start: {}", up.error().message());
    return 1;
  }
  std::vector<graceful::upgrade::unique_fd> fds;
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    auto fd = up.value()->listen(listener_name(i), cfg.listen[i]);
    if (!fd) {
      if (graceful::is_address_error(fd.error())) {  // a bad --listen is a bad flag
        std::fprintf(stderr, "grpc-greeter: --listen %s: %s\n", cfg.listen[i].c_str(), fd.error().message().c_str());
        return 2;
      }
      spdlog::error("cannot listen on {}: {}", cfg.listen[i], fd.error().message());
      return 1;
    }
    fds.push_back(std::move(fd.value()));
  }

  // An ordinary gRPC server, except that connections come from graceful's acceptor.
  greeter_service service;
  ::grpc::EnableDefaultHealthCheckService(true);  // grpc.health.v1.Health, SERVING from the start
  ::grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  graceful::grpc::acceptor_options aco;
  aco.max_connection_age = cfg.max_connection_age;
  auto acceptor = graceful::grpc::acceptor::add_to(builder, nullptr, aco);  // GRACEFUL: instead of AddListeningPort
  std::unique_ptr<::grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    spdlog::error("cannot start the gRPC server");
    return 1;
  }
  for (std::size_t i = 0; i < fds.size(); ++i) {
    auto addr = graceful::upgrade::local_address(fds[i].get());
    if (auto r = acceptor->serve(std::move(fds[i])); !r) {
      spdlog::error("cannot serve {}: {}", cfg.listen[i], r.error().message());
      return 1;
    }
    auto colon = addr.rfind(':');
    spdlog::info("grpc-greeter: listening on {} (port {})", cfg.listen[i],
                 colon == std::string::npos ? "?" : addr.substr(colon + 1));
  }

  // GRACEFUL 3: draining -> health NOT_SERVING; shutting down -> stop accepting, Shutdown(deadline).
  graceful::grpc::attach_options ao;
  ao.upgrader = up.value().get();  // after a hand-over, connections age out before Shutdown
  auto grpc_reg = graceful::grpc::attach(*server, *acceptor, lc, ao);
  // GRACEFUL 4: SIGHUP upgrades; a completed hand-over stops this process (its calls drain).
  auto upgrade_reg = up.value()->attach(lc);
  (void)up.value()->ready();  // pid file, takeover socket, "ready" to the parent or systemd
  // Non-zero when the shutdown deadline had to cancel calls, as graceful-server does.
  return grpc_reg.exit_code(lc.run());
}
