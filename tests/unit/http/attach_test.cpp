// One line plugs a server into the lifecycle: readiness, shutdown hook, dump section.
#include <graceful/http/attach.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include <gtest/gtest.h>

#include "http_test_server.hpp"

using namespace graceful::test;
namespace http = graceful::http;
namespace lc_ns = graceful::lifecycle;
using namespace std::chrono_literals;

namespace {
lc_ns::options quiet_lifecycle(std::chrono::milliseconds drain) {
  lc_ns::options o;
  o.program_name = "attach-test";
  o.handle_signals = false;  // driven from code: no process-wide signal handling in a test binary
  o.drain_delay = drain;
  o.shutdown_timeout = 5s;
  o.diag_dir = std::filesystem::temp_directory_path();
  return o;
}
http::options one_loop() {
  http::options o;
  o.threads = 1;
  o.shutdown_idle_grace = 100ms;
  return o;
}
} // namespace

TEST(http_attach, readyz_turns_503_when_draining_starts_and_shutdown_runs_as_a_hook) {
  lc_ns::lifecycle lc(quiet_lifecycle(400ms));
  event_log log;
  http::server s(test_routes(log), one_loop());
  auto reg = http::attach(s, lc);
  int port = s.listen("127.0.0.1:0").value();
  auto ready = http_get(port, "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(http_get(port, "/healthz")->status, 200);

  // The drain phase lasts until the delay has passed and the drain hooks returned: this hook
  // holds it until the test has made its requests, however slow the machine.
  std::promise<void> checked;
  auto hold = lc.on_drain("test", [f = checked.get_future().share()](graceful::deadline) { f.wait(); });
  auto code = std::async(std::launch::async, [&] { return lc.run(); });
  lc.request_stop("test");
  // The drain delay: still serving, but no longer ready.
  auto during = http_get(port, "/readyz");
  auto served = http_get(port, "/");
  checked.set_value();
  ASSERT_TRUE(during);
  EXPECT_EQ(during->status, 503);
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
  ASSERT_EQ(code.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(code.get(), 0);
  EXPECT_TRUE(s.stats().shutting_down);
  http_conn late(port);
  EXPECT_FALSE(late.connected());
}

TEST(http_attach, sigusr1_dump_lists_in_flight_requests) {
  lc_ns::lifecycle lc(quiet_lifecycle(0ms));
  event_log log;
  http::server s(test_routes(log), one_loop());
  auto reg = http::attach(s, lc);
  int port = s.listen("127.0.0.1:0").value();
  http_conn c(port);
  ASSERT_TRUE(c.send(get_request("/slow?ms=400")));
  ASSERT_TRUE(eventually([&] { return s.stats().in_flight_requests == 1; }, secs(5)));
  auto path = lc.dump_threads();
  ASSERT_TRUE(path) << path.error().message();
  std::ifstream f(path.value());
  std::stringstream text;
  text << f.rdbuf();
  std::filesystem::remove(path.value());
  EXPECT_NE(text.str().find("http connections"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("request=\"GET /slow\""), std::string::npos) << text.str();
}

TEST(http_attach, a_stop_whose_deadline_cut_a_request_counts_it_and_gives_exit_code_1) {
  auto o = quiet_lifecycle(0ms);
  o.shutdown_timeout = 1s;  // the attach margin leaves shutdown() 800 ms
  lc_ns::lifecycle lc(o);
  event_log log;
  http::server s(test_routes(log), one_loop());
  auto reg = http::attach(s, lc);
  int port = s.listen("127.0.0.1:0").value();
  http_conn c(port);
  ASSERT_TRUE(c.send(get_request("/slow?ms=30000")));
  ASSERT_TRUE(eventually([&] { return s.stats().in_flight_requests == 1; }, secs(5)));
  EXPECT_EQ(s.stats().cut_requests, 0u);
  EXPECT_FALSE(reg.cut_at_deadline());
  auto code = std::async(std::launch::async, [&] { return lc.run(); });
  lc.request_stop("test");
  ASSERT_EQ(code.wait_for(20s), std::future_status::ready);
  int run_code = code.get();
  EXPECT_EQ(run_code, 0);  // the lifecycle itself stopped in time: the loss is the server's to report
  EXPECT_TRUE(reg.cut_at_deadline());
  EXPECT_EQ(reg.exit_code(run_code), 1);
  EXPECT_EQ(reg.exit_code(143), 143);  // a second signal's code is kept
  EXPECT_EQ(s.stats().cut_requests, 1u);
  EXPECT_EQ(s.stats().cut_connections, 1u);
  auto end = c.read_until_close(secs(5));
  EXPECT_TRUE(end == read_end::eof || end == read_end::reset);
}

TEST(http_attach, a_stop_that_drained_everything_gives_exit_code_0) {
  lc_ns::lifecycle lc(quiet_lifecycle(0ms));
  event_log log;
  http::server s(test_routes(log), one_loop());
  auto reg = http::attach(s, lc);
  int port = s.listen("127.0.0.1:0").value();
  http_conn c(port);
  ASSERT_TRUE(c.send(get_request("/slow?ms=200")));
  ASSERT_TRUE(eventually([&] { return s.stats().in_flight_requests == 1; }, secs(5)));
  auto code = std::async(std::launch::async, [&] { return lc.run(); });
  lc.request_stop("test");
  auto r = c.read_response(secs(10));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(code.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(reg.exit_code(code.get()), 0);
  EXPECT_FALSE(reg.cut_at_deadline());
  EXPECT_EQ(s.stats().cut_requests, 0u);
  EXPECT_EQ(s.stats().cut_connections, 0u);
}
