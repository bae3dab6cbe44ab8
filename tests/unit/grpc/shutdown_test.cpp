// graceful::grpc::shutdown: stop accepting, let gRPC drain, say whether the deadline cut calls.
#include <graceful/grpc/shutdown.hpp>

#include <future>

#include <gtest/gtest.h>

#include "grpc_fixture.hpp"

using namespace graceful::test::grpc_support;
namespace ggrpc = graceful::grpc;
using graceful::deadline;

namespace {
struct open_stream {
  ::grpc::ClientContext ctx;
  std::unique_ptr<::grpc::ClientReader<greeter::HelloReply>> reader;
  open_stream(greeter::Greeter::Stub& stub, unsigned count, unsigned interval_ms) {
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    greeter::HelloStreamRequest req;
    req.set_count(count);
    req.set_interval_ms(interval_ms);
    reader = stub.SayHelloStream(&ctx, req);
  }
};
} // namespace

TEST(grpc_shutdown, returns_ok_without_calls_in_flight) {
  served s;
  auto stub = greeter::Greeter::NewStub(channel(s.target()));
  ASSERT_TRUE(say_hello(*stub).ok());
  EXPECT_TRUE(ggrpc::shutdown(*s.server, deadline::after(10s), s.acceptor.get()));
  EXPECT_TRUE(s.acceptor->stopped());
}

TEST(grpc_shutdown, lets_a_stream_in_flight_finish_before_the_deadline) {
  served s;
  auto stub = greeter::Greeter::NewStub(channel(s.target()));
  open_stream st(*stub, 5, 50);
  greeter::HelloReply rep;
  ASSERT_TRUE(st.reader->Read(&rep));
  auto done = std::async(std::launch::async,
                         [&] { return ggrpc::shutdown(*s.server, deadline::after(20s), s.acceptor.get()); });
  int n = 1;
  while (st.reader->Read(&rep)) ++n;
  EXPECT_EQ(n, 5);
  auto status = st.reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(done.get());
}

TEST(grpc_shutdown, cancels_a_stream_still_open_at_the_deadline_and_says_so) {
  served s;
  auto stub = greeter::Greeter::NewStub(channel(s.target()));
  open_stream st(*stub, 100000, 50);
  greeter::HelloReply rep;
  ASSERT_TRUE(st.reader->Read(&rep));
  auto done = std::async(std::launch::async,
                         [&] { return ggrpc::shutdown(*s.server, deadline::after(300ms), s.acceptor.get()); });
  while (st.reader->Read(&rep)) {
  }
  auto status = st.reader->Finish();
  EXPECT_FALSE(status.ok());
  auto r = done.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), ggrpc::errc::calls_cancelled);
  EXPECT_EQ(r.error().message(), "the shutdown deadline passed; calls still in flight were cancelled");
}
