#pragma once
// gRPC's own C++ client as the tests use it (unit/grpc and integration/grpc_*): a channel with
// a connection of its own, one SayHello, one health check. Header-only: only the gRPC test
// executables include it, and they alone link gRPC and the generated Greeter code.
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "greeter.grpc.pb.h"
#ifdef GRACEFUL_HAVE_HEALTH_PROTO
#include "health.grpc.pb.h"
#endif

namespace graceful::test {

/// A channel with a connection of its own (no subchannel shared with other channels, so
/// that each channel is one TCP connection the test can reason about).
inline std::shared_ptr<::grpc::Channel> grpc_channel(const std::string& target) {
  ::grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return ::grpc::CreateCustomChannel(target, ::grpc::InsecureChannelCredentials(), args);
}
inline std::shared_ptr<::grpc::Channel> grpc_channel(int port) {
  return grpc_channel("127.0.0.1:" + std::to_string(port));
}

/// One SayHello with wait_for_ready and a 10 s deadline.
inline ::grpc::Status say_hello(greeter::Greeter::Stub& stub, greeter::HelloReply* rep = nullptr,
                                const std::string& name = "test") {
  ::grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  greeter::HelloRequest req;
  req.set_name(name);
  greeter::HelloReply local;
  return stub.SayHello(&ctx, req, rep ? rep : &local);
}

#ifdef GRACEFUL_HAVE_HEALTH_PROTO
/// grpc.health.v1.Health/Check for the whole server (""): "SERVING", "NOT_SERVING", or
/// "error N" with the status code.
inline std::string grpc_health(const std::shared_ptr<::grpc::Channel>& ch) {
  auto stub = ::grpc::health::v1::Health::NewStub(ch);
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ::grpc::health::v1::HealthCheckRequest req;
  ::grpc::health::v1::HealthCheckResponse rep;
  auto s = stub->Check(&ctx, req, &rep);
  if (!s.ok()) return "error " + std::to_string(s.error_code());
  return ::grpc::health::v1::HealthCheckResponse::ServingStatus_Name(rep.status());
}
#endif

} // namespace graceful::test
