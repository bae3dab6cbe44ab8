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

#include <graceful/core/duration.hpp>
#include <graceful/core/errc.hpp>
#include <graceful/grpc/acceptor.hpp>
#include <graceful/grpc/attach.hpp>
#include <graceful/lifecycle/lifecycle.hpp>
#include <graceful/upgrade/upgrader.hpp>

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
  std::vector<std::string> listen{"127.0.0.1:50051"};
  std::chrono::milliseconds drain_delay{0};
  std::chrono::milliseconds shutdown_timeout{25'000};
  std::chrono::milliseconds upgrade_timeout{60'000};
  std::chrono::milliseconds max_connection_age{10'000};
  std::string pid_file, takeover, takeover_socket, diag_dir, log_level = "info";
};

/// Fills `cfg`; returns -1 to go on, or the exit code (0 after --help/--version, 2 on errors).
int parse_flags(int argc, char** argv, config& cfg) {
  CLI::App app{"grpc-greeter: a gRPC Greeter server that drains, restarts and upgrades without losing a call"};
  app.set_version_flag("--version", std::string("grpc-greeter ") + GRACEFUL_VERSION);
  std::string drain = "0", timeout = "25s", upgrade_timeout = "60s", max_age = "10s";
  std::vector<std::string> listen;
  app.add_option("--listen", listen, "ADDR:PORT to listen on (repeatable; default 127.0.0.1:50051)");
  app.add_option("--drain-delay", drain, "keep serving this long with health NOT_SERVING before shutting down (default 0)");
  app.add_option("--shutdown-timeout", timeout,
                 "budget for the whole stop after the drain delay; calls still running then are cancelled "
                 "and the exit code is 1 (default 25s)");
  app.add_option("--pid-file", cfg.pid_file, "write the process id here (rewritten by the new process on upgrade)");
  app.add_option("--upgrade-timeout", upgrade_timeout,
                 "on SIGHUP, how long the new binary may take to be ready before it is killed (default 60s)");
  app.add_option("--max-connection-age", max_age,
                 "gRPC sends each connection a graceful GOAWAY after this long; after an upgrade the old "
                 "process waits for its connections to age out before shutting down (default 10s; 0 = never)");
  app.add_option("--takeover", cfg.takeover, "take the listening sockets from the process offering them on this UNIX socket");
  app.add_option("--takeover-socket", cfg.takeover_socket,
                 "once ready, offer the listening sockets on this UNIX socket (0600) to a --takeover");
  app.add_option("--diag-dir", cfg.diag_dir, "where SIGUSR1 dumps and SIGUSR2 profiles go (default: temp dir)");
  app.add_option("--log-level", cfg.log_level, "trace, debug, info, warn, error, critical or off (default info)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "grpc-greeter: %s\nRun with --help for usage.\n", e.what());
    return 2;
  }
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "grpc-greeter: %s\n", msg.c_str());
    return 2;
  };
  using std::chrono::milliseconds;
  auto d = graceful::parse_duration(drain);
  if (!d) return fail("--drain-delay: not a duration: '" + drain + "' (try 250ms, 5s)");
  cfg.drain_delay = std::chrono::ceil<milliseconds>(*d);
  auto t = graceful::parse_duration(timeout);
  if (!t || t->count() <= 0) return fail("--shutdown-timeout: not a positive duration: '" + timeout + "' (try 25s)");
  cfg.shutdown_timeout = std::chrono::ceil<milliseconds>(*t);
  auto u = graceful::parse_duration(upgrade_timeout);
  if (!u || u->count() <= 0)
    return fail("--upgrade-timeout: not a positive duration: '" + upgrade_timeout + "' (try 30s, 2m)");
  cfg.upgrade_timeout = std::chrono::ceil<milliseconds>(*u);
  auto a = graceful::parse_duration(max_age);
  if (!a || a->count() < 0) return fail("--max-connection-age: not a duration: '" + max_age + "' (try 10s)");
  cfg.max_connection_age = std::chrono::ceil<milliseconds>(*a);
  if (!listen.empty()) cfg.listen = listen;
  if (spdlog::level::from_str(cfg.log_level) == spdlog::level::off && cfg.log_level != "off")
    return fail("--log-level: unknown level '" + cfg.log_level + "'");
  return -1;
}

/// The name a --listen socket travels under between versions (and in a systemd socket unit's
/// FileDescriptorName=): "grpc" for the first, "grpc-2", "grpc-3"... for the others.
std::string listener_name(std::size_t i) { return i == 0 ? "grpc" : "grpc-" + std::to_string(i + 1); }

} // namespace

int main(int argc, char** argv) {
  config cfg;
  if (int code = parse_flags(argc, argv, cfg); code >= 0) return code;
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));

  // GRACEFUL 1: the lifecycle first, so every thread (gRPC's too) inherits its signal mask.
  graceful::lifecycle::options lo;
  lo.program_name = "grpc-greeter";
  lo.drain_delay = cfg.drain_delay;
  lo.shutdown_timeout = cfg.shutdown_timeout;
  if (!cfg.diag_dir.empty()) lo.diag_dir = cfg.diag_dir;
  graceful::lifecycle::lifecycle lc(lo);

  // GRACEFUL 2: the sockets, inherited when there are any, bound otherwise.
  graceful::upgrade::options uo;
  uo.upgrade_timeout = cfg.upgrade_timeout;
  uo.pid_file = cfg.pid_file;
  uo.takeover_from = cfg.takeover;
  uo.takeover_socket = cfg.takeover_socket;
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
