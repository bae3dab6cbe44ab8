// grpc-greeter-plain: the Greeter service as a gRPC C++ program without graceful, for
// comparison (bench/grpc.sh). It binds with AddListeningPort and stops the way gRPC's
// examples do: SIGTERM/SIGINT -> Server::Shutdown(now + 25 s) -> exit. A restart is
// therefore "stop, then start a new process", and nobody listens in between.
//
//   grpc-greeter-plain [ADDR:PORT]     (default 127.0.0.1:50051)
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "greeter.grpc.pb.h"

namespace {

class greeter_service final : public greeter::Greeter::Service {
  ::grpc::Status SayHello(::grpc::ServerContext*, const greeter::HelloRequest* req,
                          greeter::HelloReply* reply) override {
    reply->set_message("Hello " + req->name());
    reply->set_pid(::getpid());
    return ::grpc::Status::OK;
  }
};

} // namespace

int main(int argc, char** argv) {
  std::string addr = argc > 1 ? argv[1] : "127.0.0.1:50051";
  if (argc > 2 || addr.rfind("--", 0) == 0) {
    std::fprintf(stderr, "usage: grpc-greeter-plain [ADDR:PORT]\n");
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before gRPC starts threads

  greeter_service service;
  ::grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(addr, ::grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "grpc-greeter-plain: cannot listen on %s\n", addr.c_str());
    return 1;
  }
  std::fprintf(stderr, "grpc-greeter-plain: listening on %s (port %d)\n", addr.c_str(), port);
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "grpc-greeter-plain: signal %d: shutting down\n", sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(25));
  return 0;
}
