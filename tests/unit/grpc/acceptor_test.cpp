// graceful::grpc::acceptor: a grpc::Server served from a listening socket graceful holds.
#include <graceful/grpc/acceptor.hpp>

#include <cerrno>

#include <arpa/inet.h>
#include <fcntl.h>

#include <gtest/gtest.h>

#include "grpc_fixture.hpp"
#include "process.hpp"

using namespace graceful::test::grpc_support;
namespace ggrpc = graceful::grpc;
using graceful::deadline;
using graceful::upgrade::unique_fd;

namespace {
/// connect() to 127.0.0.1:port; returns errno (0 when connected).
int connect_errno(int port) {
  unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
}
} // namespace

TEST(grpc_acceptor, serves_calls_on_the_socket_it_was_given) {
  served s;
  auto stub = greeter::Greeter::NewStub(channel(s.target()));
  greeter::HelloReply rep;
  auto st = say_hello(*stub, &rep);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(rep.message(), "Hello test");
  EXPECT_EQ(rep.pid(), ::getpid());
  auto stats = s.acceptor->stats();
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.open_connections, 1u);
  EXPECT_EQ(stats.listeners, 1u);
  EXPECT_NE(s.acceptor->describe().find("127.0.0.1:" + std::to_string(s.port)), std::string::npos)
      << s.acceptor->describe();
}

TEST(grpc_acceptor, refuses_what_is_not_a_listening_stream_socket) {
  served s;
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);
  EXPECT_EQ(s.acceptor->serve(unique_fd(p[0])).error(), ggrpc::errc::not_a_listener);
  EXPECT_EQ(s.acceptor->serve(unique_fd(::socket(AF_INET, SOCK_STREAM, 0))).error(), ggrpc::errc::not_a_listener);
  EXPECT_EQ(s.acceptor->serve(unique_fd(::socket(AF_INET, SOCK_DGRAM, 0))).error(), ggrpc::errc::not_a_listener);
  EXPECT_EQ(s.acceptor->serve(unique_fd()).error(), ggrpc::errc::not_a_listener);
  EXPECT_EQ(s.acceptor->stats().listeners, 1u);
}

TEST(grpc_acceptor, stop_closes_its_copy_of_the_listener_and_refuses_later_serve) {
  served s;
  ASSERT_EQ(connect_errno(s.port), 0);
  s.acceptor->stop();
  EXPECT_TRUE(s.acceptor->stopped());
  // The acceptor held the only copy: the kernel now refuses instead of queueing.
  EXPECT_EQ(connect_errno(s.port), ECONNREFUSED);
  int port2 = 0;
  EXPECT_EQ(s.acceptor->serve(loopback_listener(port2)).error(), ggrpc::errc::acceptor_stopped);
  s.acceptor->stop();  // idempotent
}

TEST(grpc_acceptor, serves_several_listeners_from_one_thread) {
  served s;
  int port2 = 0;
  ASSERT_TRUE(s.acceptor->serve(loopback_listener(port2)));
  auto a = greeter::Greeter::NewStub(channel(s.target()));
  auto b = greeter::Greeter::NewStub(channel("127.0.0.1:" + std::to_string(port2)));
  EXPECT_TRUE(say_hello(*a).ok());
  EXPECT_TRUE(say_hello(*b).ok());
  EXPECT_EQ(s.acceptor->stats().accepted, 2u);
}

TEST(grpc_acceptor, counts_a_connection_open_until_grpc_closes_it) {
  auto s = std::make_unique<served>();
  {
    auto ch = channel(s->target());
    auto stub = greeter::Greeter::NewStub(ch);
    ASSERT_TRUE(say_hello(*stub).ok());
    EXPECT_EQ(s->acceptor->wait_connections_closed(deadline::after(std::chrono::milliseconds(50))), 1u);
  }
  // The channel is gone: the client closed the connection and gRPC closes its end.
  EXPECT_EQ(s->acceptor->wait_connections_closed(deadline::after(10s)), 0u);
}

TEST(grpc_acceptor, max_connection_age_moves_a_busy_client_to_new_connections_without_a_failed_call) {
  ggrpc::acceptor_options o;
  o.max_connection_age = std::chrono::milliseconds(200);
  served s(o);
  auto stub = greeter::Greeter::NewStub(channel(s.target()));
  int calls = 0, failed = 0;
  // Each GOAWAY from the age limit makes the client reconnect: three connections prove two.
  bool reconnected = graceful::test::eventually(
      [&] {
        ++calls;
        failed += !say_hello(*stub).ok();
        return s.acceptor->stats().accepted >= 3;
      },
      deadline::after(20s));
  EXPECT_TRUE(reconnected) << s.acceptor->describe();
  EXPECT_EQ(failed, 0) << calls << " calls";
}
