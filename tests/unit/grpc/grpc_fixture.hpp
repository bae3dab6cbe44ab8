#pragma once
// Test support for graceful::grpc: an in-process Greeter server fed by an acceptor on a
// loopback listener (port 0), and gRPC C++ client helpers.
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <graceful/grpc/acceptor.hpp>
#include <graceful/upgrade/unique_fd.hpp>

#include "grpc_client.hpp"
#include "sockets.hpp"

namespace graceful::test::grpc_support {

using namespace std::chrono_literals;

/// Greeter whose stream sends `count` replies `interval_ms` apart, stopping when cancelled.
class greeter_service final : public greeter::Greeter::Service {
public:
  ::grpc::Status SayHello(::grpc::ServerContext*, const greeter::HelloRequest* req, greeter::HelloReply* rep) override {
    rep->set_message("Hello " + req->name());
    rep->set_pid(::getpid());
    return ::grpc::Status::OK;
  }
  ::grpc::Status SayHelloStream(::grpc::ServerContext* ctx, const greeter::HelloStreamRequest* req,
                                ::grpc::ServerWriter<greeter::HelloReply>* w) override {
    for (std::uint32_t i = 0; i < req->count(); ++i) {
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(i ? req->interval_ms() : 0);
      while (std::chrono::steady_clock::now() < until && !ctx->IsCancelled()) std::this_thread::sleep_for(5ms);
      if (ctx->IsCancelled()) return {::grpc::StatusCode::CANCELLED, "cancelled"};
      greeter::HelloReply r;
      r.set_index(i);
      r.set_pid(::getpid());
      if (!w->Write(r)) return {::grpc::StatusCode::CANCELLED, "client gone"};
    }
    return ::grpc::Status::OK;
  }
};

/// A listening TCP socket on 127.0.0.1, port 0; `port` gets the port.
inline upgrade::unique_fd loopback_listener(int& port) {
  auto l = listen_tcp();
  port = l.port;
  return upgrade::unique_fd(l.fd.release());
}

/// An in-process server served only through an acceptor.
struct served {
  greeter_service service;
  std::unique_ptr<graceful::grpc::acceptor> acceptor;
  std::unique_ptr<::grpc::Server> server;
  int port = 0;

  explicit served(graceful::grpc::acceptor_options o = {}) {
    ::grpc::EnableDefaultHealthCheckService(true);
    ::grpc::ServerBuilder b;
    b.RegisterService(&service);
    acceptor = graceful::grpc::acceptor::add_to(b, nullptr, std::move(o));
    server = b.BuildAndStart();
    auto fd = loopback_listener(port);
    EXPECT_TRUE(fd);
    auto r = acceptor->serve(std::move(fd));
    EXPECT_TRUE(r) << r.error().message();
  }
  ~served() {
    acceptor->stop();
    server->Shutdown(std::chrono::system_clock::now() + 5s);
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(port); }
};

using graceful::test::say_hello;
inline std::shared_ptr<::grpc::Channel> channel(const std::string& target) { return grpc_channel(target); }
#ifdef GRACEFUL_HAVE_HEALTH_PROTO
inline std::string health(const std::shared_ptr<::grpc::Channel>& ch) { return grpc_health(ch); }
#endif

} // namespace graceful::test::grpc_support
