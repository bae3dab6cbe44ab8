// graceful::grpc::attach: draining flips health to NOT_SERVING while calls are served; the
// shutdown hook drains gRPC, and a deadline that cuts calls makes the exit code non-zero.
#include <graceful/grpc/attach.hpp>

#include <filesystem>
#include <future>

#include <gtest/gtest.h>

#include "grpc_fixture.hpp"
#include "process.hpp"

using namespace graceful::test::grpc_support;
namespace ggrpc = graceful::grpc;
namespace lc_ns = graceful::lifecycle;
using graceful::deadline;

namespace {
lc_ns::options quiet_lifecycle(std::chrono::milliseconds drain, std::chrono::milliseconds timeout) {
  lc_ns::options o;
  o.program_name = "grpc-attach-test";
  o.handle_signals = false;  // driven from code
  o.drain_delay = drain;
  o.shutdown_timeout = timeout;
  o.diag_dir = std::filesystem::temp_directory_path();
  return o;
}
} // namespace

#ifdef GRACEFUL_HAVE_HEALTH_PROTO
TEST(grpc_attach, health_says_not_serving_during_the_drain_delay_while_calls_are_still_served) {
  lc_ns::lifecycle lc(quiet_lifecycle(3s, 10s));
  served s;
  auto reg = ggrpc::attach(*s.server, *s.acceptor, lc);
  auto ch = channel(s.target());
  auto stub = greeter::Greeter::NewStub(ch);
  EXPECT_EQ(health(ch), "SERVING");

  auto code = std::async(std::launch::async, [&] { return lc.run(); });
  lc.request_stop("test");
  EXPECT_TRUE(graceful::test::eventually([&] { return health(ch) == "NOT_SERVING"; }, deadline::after(10s)));
  EXPECT_EQ(lc.current_phase(), lc_ns::phase::draining);
  // Still served, on the same connection and on a new one.
  EXPECT_TRUE(say_hello(*stub).ok());
  auto fresh = greeter::Greeter::NewStub(channel(s.target()));
  EXPECT_TRUE(say_hello(*fresh).ok());
  EXPECT_EQ(lc.current_phase(), lc_ns::phase::draining);
  ASSERT_EQ(code.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(reg.exit_code(code.get()), 0);
  EXPECT_FALSE(reg.calls_cancelled());
  EXPECT_TRUE(s.acceptor->stopped());
}
#endif

TEST(grpc_attach, a_stream_cut_at_the_shutdown_deadline_gets_a_status_and_a_non_zero_exit_code) {
  lc_ns::lifecycle lc(quiet_lifecycle(0ms, 800ms));
  served s;
  auto reg = ggrpc::attach(*s.server, *s.acceptor, lc);
  auto stub = greeter::Greeter::NewStub(channel(s.target()));
  ::grpc::ClientContext ctx;
  greeter::HelloStreamRequest req;
  req.set_count(100000);
  req.set_interval_ms(20);
  auto reader = stub->SayHelloStream(&ctx, req);
  greeter::HelloReply rep;
  ASSERT_TRUE(reader->Read(&rep));

  auto code = std::async(std::launch::async, [&] { return lc.run(); });
  lc.request_stop("test");
  while (reader->Read(&rep)) {
  }
  auto status = reader->Finish();
  EXPECT_FALSE(status.ok());
  ASSERT_EQ(code.wait_for(20s), std::future_status::ready);
  int run_code = code.get();
  EXPECT_EQ(run_code, 0);
  EXPECT_TRUE(reg.calls_cancelled());
  EXPECT_EQ(reg.exit_code(run_code), 1);
}

TEST(grpc_attach, a_clean_stop_finishes_the_stream_in_flight_and_exits_zero) {
  lc_ns::lifecycle lc(quiet_lifecycle(0ms, 20s));
  served s;
  auto reg = ggrpc::attach(*s.server, *s.acceptor, lc);
  auto stub = greeter::Greeter::NewStub(channel(s.target()));
  ::grpc::ClientContext ctx;
  greeter::HelloStreamRequest req;
  req.set_count(10);
  req.set_interval_ms(30);
  auto reader = stub->SayHelloStream(&ctx, req);
  greeter::HelloReply rep;
  ASSERT_TRUE(reader->Read(&rep));
  auto code = std::async(std::launch::async, [&] { return lc.run(); });
  lc.request_stop("test");
  int n = 1;
  while (reader->Read(&rep)) ++n;
  EXPECT_EQ(n, 10);
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_EQ(code.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(reg.exit_code(code.get()), 0);
}

TEST(grpc_attach, destroying_the_attachment_unplugs_the_server) {
  lc_ns::lifecycle lc(quiet_lifecycle(0ms, 5s));
  served s;
  { auto reg = ggrpc::attach(*s.server, *s.acceptor, lc); }
  auto code = std::async(std::launch::async, [&] { return lc.run(); });
  lc.request_stop("test");
  ASSERT_EQ(code.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(code.get(), 0);
  // No hook ran: the acceptor still serves.
  EXPECT_FALSE(s.acceptor->stopped());
  auto stub = greeter::Greeter::NewStub(channel(s.target()));
  EXPECT_TRUE(say_hello(*stub).ok());
}
