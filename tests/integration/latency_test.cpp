// A path with latency (issue 14): loopback delivers a FIN the instant it is sent, which hides
// the race of a request already on the wire while the server closes. These tests put
// tests/support's delay proxy (20 ms each way) between graceful-bench and graceful-server and
// run the upgrade, a rollout-like series of upgrades, and the SIGTERM drain through it.
// The first tests check the proxy itself: delay, order, FIN and RST passed on.
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "delay_proxy.hpp"
#include "http_client.hpp"
#include "temp_dir.hpp"
#include "upgrade_load_support.hpp"

namespace {

using namespace std::chrono_literals;
using graceful::deadline;
namespace gt = graceful::test;
namespace ul = graceful::test::upgrade_load;
using steady = std::chrono::steady_clock;


gt::delay_proxy_options through(int port, std::chrono::microseconds d = 20ms) {
  gt::delay_proxy_options o;
  o.upstream_port = port;
  o.delay = d;
  return o;
}

TEST(delay_proxy, a_request_and_its_response_each_take_the_one_way_delay) {
  ul::misbehaving s("ok");
  gt::delay_proxy proxy(through(s.port, 30ms));
  ASSERT_TRUE(proxy.ok()) << proxy.error().message();
  gt::http_conn c(proxy.port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    const auto t0 = steady::now();
    ASSERT_TRUE(c.send(gt::get_request("/")));
    auto r = c.read_response(deadline::after(10s));
    const auto rtt = steady::now() - t0;
    ASSERT_TRUE(r) << "request " << i;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "ok");
    // A lower bound only: the delay is physics here, the machine can only add to it.
    EXPECT_GE(rtt, 60ms) << "request " << i;
  }
  EXPECT_EQ(proxy.accepted(), 1u);
}

TEST(delay_proxy, bytes_then_fin_arrive_in_order) {
  ul::misbehaving s("partial");  // half a response, then FIN
  gt::delay_proxy proxy(through(s.port));
  gt::http_conn c(proxy.port());
  ASSERT_TRUE(c.send(gt::get_request("/")));
  EXPECT_TRUE(c.wait_for("Content-Length: 10", deadline::after(10s)));
  EXPECT_EQ(c.read_until_close(deadline::after(10s)), gt::read_end::eof);
}

TEST(delay_proxy, a_reset_is_passed_on_as_a_reset) {
  ul::misbehaving s("reset");
  gt::delay_proxy proxy(through(s.port));
  gt::http_conn c(proxy.port());
  ASSERT_TRUE(c.send(gt::get_request("/")));
  EXPECT_EQ(c.read_until_close(deadline::after(10s)), gt::read_end::reset);
}

TEST(delay_proxy, a_client_fin_reaches_the_server_and_its_answer_comes_back) {
  ul::misbehaving s("ok");
  gt::delay_proxy proxy(through(s.port));
  gt::http_conn c(proxy.port());
  ASSERT_TRUE(c.send(gt::get_request("/")));
  c.shutdown_write();  // half-close: the server answers, then sees EOF and closes
  auto r = c.read_response(deadline::after(10s));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c.read_until_close(deadline::after(10s)), gt::read_end::eof);
}

TEST(delay_proxy, a_refused_upstream_is_a_reset_for_the_client) {
  ul::refusing_port nobody;
  ASSERT_GT(nobody.port, 0);
  gt::delay_proxy proxy(through(nobody.port));
  gt::http_conn c(proxy.port());
  ASSERT_TRUE(c.connected());
  c.send(gt::get_request("/"));
  EXPECT_EQ(c.read_until_close(deadline::after(10s)), gt::read_end::reset);
}

/// graceful-bench through `proxy` until stopped: closed-loop GET and POST with think time.
std::vector<std::unique_ptr<ul::load_child>> start_loads(const gt::temp_dir& dir, int proxy_port) {
  const std::string base = "http://127.0.0.1:" + std::to_string(proxy_port);
  std::vector<std::unique_ptr<ul::load_child>> loads;
  auto add = [&](const std::string& name, std::vector<std::string> args) {
    std::vector<std::string> argv{gt::bin("graceful-bench"), "-c", "4", "-t", "1", "-d", "300s", "--json",
                                  dir / (name + ".json")};
    argv.insert(argv.end(), args.begin(), args.end());
    loads.push_back(std::make_unique<ul::load_child>(name, argv));
  };
  add("get-closed-loop", {base + "/"});
  // Connections idle 50-150 ms between requests: pooled like real clients', so an upgrade finds
  // them idle as often as busy.
  add("post-think", {"--method", "POST", "--body-size", "256", "--think", "100ms", base + "/echo"});
  return loads;
}

/// Stops the loads and checks that none lost a request. Returns the reconnects of all loads.
double expect_no_failure(const gt::temp_dir& dir, std::vector<std::unique_ptr<ul::load_child>>& loads) {
  double reconnects = 0;
  for (auto& l : loads) {
    l->stop();
    const std::string json = gt::read_file(dir / (l->name + ".json"));
    EXPECT_EQ(l->status, std::optional<int>(0)) << l->name << ": " << l->output;
    EXPECT_EQ(ul::json_number(json, "failures.total"), 0) << l->name << ": " << l->output;
    EXPECT_GT(ul::json_number(json, "ok"), 0) << l->name << ": " << l->output;
    reconnects += ul::json_number(json, "reconnects.total");
  }
  return reconnects;
}

void upgrades_through_the_proxy_lose_nothing(int upgrades) {
  gt::temp_dir dir("latency");
  gt::upgradable_server server;
  ASSERT_TRUE(server.start()) << server.first().output();
  gt::delay_proxy proxy(through(server.port()));
  ASSERT_TRUE(proxy.ok());
  auto loads = start_loads(dir, proxy.port());
  const unsigned conns = 8;  // 2 loads x 4 connections
  ASSERT_TRUE(ul::load_on_live_generation(server.port(), conns));
  for (int i = 0; i < upgrades; ++i) {
    std::string why;
    ASSERT_GT(server.upgrade(&why), 0) << "upgrade " << i << ": " << why;
    // Each upgrade forces one reconnect per connection (`Connection: close`, or closed while
    // idle); the next upgrade waits until all of them are on the new generation.
    ASSERT_TRUE(ul::load_on_live_generation(server.port(), conns)) << "upgrade " << i;
  }
  const double reconnects = expect_no_failure(dir, loads);
  // The load ran across every upgrade (otherwise the zero above proves nothing).
  EXPECT_GE(reconnects, conns * upgrades);
}

TEST(latency_20ms, sighup_upgrade_under_keep_alive_load_loses_no_request) {
  upgrades_through_the_proxy_lose_nothing(1);
}

TEST(latency_20ms, rollout_of_five_upgrades_in_a_row_loses_no_request) {
  // Like a rollout: each generation is replaced as soon as the load has moved onto it.
  upgrades_through_the_proxy_lose_nothing(5);
}

TEST(latency_20ms, sigterm_drains_requests_in_flight_through_the_proxy) {
  gt::temp_dir dir("latency");
  // The drain delay keeps the listener open while the load stops, as a deregistration would.
  gt::upgradable_server server;
  ASSERT_TRUE(server.start({"--drain-delay", "3s"})) << server.first().output();
  gt::delay_proxy proxy(through(server.port()));
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port()) + "/slow?ms=100";
  std::vector<std::unique_ptr<ul::load_child>> loads;
  loads.push_back(std::make_unique<ul::load_child>(
      "slow", std::vector<std::string>{gt::bin("graceful-bench"), "-c", "8", "-t", "1", "-d", "300s", "--think",
                                       "50ms", "--json", dir / "slow.json", url}));
  ASSERT_TRUE(ul::load_on_live_generation(server.port(), 8));
  server.first().signal(SIGTERM);
  ASSERT_TRUE(server.first().wait_for_output("draining", ul::patient())) << server.first().output();
  // Requests sent while draining, and those in flight when the load stops, are all answered.
  expect_no_failure(dir, loads);
  EXPECT_EQ(server.first().wait(ul::patient()), std::optional<int>(0)) << server.first().output();
}

} // namespace
