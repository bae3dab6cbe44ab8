// graceful-run with Go net/http workers taking their listener from LISTEN_FDS: the project's
// plain Go peer bench/peers/go-http -listen-fds (Server.Shutdown on SIGTERM, nothing else), and
// tests/programs/go-worker, which also answers "Connection: close" for a moment before
// Shutdown. Skipped when `go` is not installed.

#include <filesystem>
#include <set>
#include <map>

#include <gtest/gtest.h>

#include "graceful_run.hpp"
#include "load.hpp"
#include "processes.hpp"

namespace graceful::test {

using namespace std::chrono_literals;
namespace {

std::string go_worker() { return bin("graceful-run-go-worker"); }

// bench/peers/go-http, built by bench/peers/build.sh (flock'd, cached by mtime) next to bin/.
std::string go_http() {
  namespace fs = std::filesystem;
  const fs::path out = fs::path(bin_dir()).parent_path() / "bench-peers";
  const fs::path script = fs::path(GRACEFUL_SOURCE_DIR) / "bench/peers/build.sh";
  if (!fs::exists(script)) return "";
  child b({{"/bin/sh", "-c", "exec \"$0\" \"$1\" go-http", script.string(), out.string()}});
  if (b.wait(deadline::after(110s)) != 0) {
    ADD_FAILURE() << "bench/peers/build.sh failed: " << b.output();
    return "";
  }
  return (out / "go-http").string();
}

class graceful_run_go : public ::testing::Test {
protected:
  void SetUp() override {
    if (!std::filesystem::exists(go_worker())) GTEST_SKIP() << "go is not installed; no Go worker";
  }
};

TEST_F(graceful_run_go, go_server_takes_exactly_its_listener_from_listen_fds) {
  runner r({"--listen", "web=127.0.0.1:0"}, {go_worker()});
  int port = r.port("web");
  ASSERT_TRUE(r.wait_for("ready (READY=1)")) << r.output();
  pid_t w = r.ready_workers().at(0);
  auto env = get_body(port, "/env");
  ASSERT_TRUE(env.has_value()) << r.output();
  EXPECT_NE(env->find("pid=" + std::to_string(w) + "\n"), std::string::npos) << *env;
  EXPECT_NE(env->find("LISTEN_PID=" + std::to_string(w) + "\n"), std::string::npos) << *env;
  EXPECT_NE(env->find("LISTEN_FDS=1\n"), std::string::npos) << *env;
  EXPECT_NE(env->find("LISTEN_FDNAMES=web\n"), std::string::npos) << *env;
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(10s)), 0) << r.output();
}

// The product's promise: ten SIGHUP restarts of a busy server, with keep-alive clients and
// with a new connection per request, and not one failed request.
TEST_F(graceful_run_go, ten_sighup_restarts_under_load_fail_no_request) {
  runner r({"--listen", "web=127.0.0.1:0", "--shutdown-timeout", "10s"}, {go_worker()});
  int port = r.port("web");
  ASSERT_TRUE(r.wait_for("ready (READY=1)")) << r.output();
  auto seen = restarts_under_load(r, port, 10);
  ASSERT_TRUE(seen.done) << seen.error << "\n" << r.output();
  std::printf("10 SIGHUP restarts: %s\n", seen.summary.c_str());
  EXPECT_EQ(seen.keep_alive_failures, 0) << seen.summary;
  EXPECT_EQ(seen.close_failures, 0) << seen.summary;
  auto ready = r.ready_workers();
  EXPECT_EQ(std::set<pid_t>(ready.begin(), ready.end()).size(), 11u) << r.output();
  // Every replaced worker drained and exited; only the last one is left.
  EXPECT_TRUE(eventually([&] { return count_of(r.output(), "old worker") == 10; }, deadline::after(15s)))
      << r.output();
  EXPECT_EQ(children_of(r.pid()).size(), 1u);
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(15s)), 0) << r.output();
}

// A crash loses the requests inside the crashed worker, but no connection is refused: they
// wait in graceful-run's listen queue until the restarted worker accepts them.
TEST_F(graceful_run_go, crashed_go_worker_is_restarted_and_no_connection_is_refused) {
  runner r({"--listen", "web=127.0.0.1:0", "--restart-backoff", "200ms"}, {go_worker()});
  int port = r.port("web");
  ASSERT_TRUE(r.wait_for("ready (READY=1)")) << r.output();
  pid_t first = r.ready_workers().at(0);
  load keep_alive(port, 4, true);
  load close(port, 4, false);
  ASSERT_TRUE(eventually([&] { return close.count(outcome::ok) > 50; }, deadline::after(10s)));
  ::kill(first, SIGKILL);
  ASSERT_TRUE(r.wait_count("ready (READY=1)", 2, 10s)) << r.output();
  long after_restart = keep_alive.count(outcome::ok) + close.count(outcome::ok);
  ASSERT_TRUE(eventually([&] { return keep_alive.count(outcome::ok) + close.count(outcome::ok) > after_restart + 50; },
                         deadline::after(10s)));
  keep_alive.stop();
  close.stop();
  std::printf("worker SIGKILL + restart: keep-alive %s| close %s\n", keep_alive.summary().c_str(),
              close.summary().c_str());
  EXPECT_EQ(keep_alive.count(outcome::refused) + close.count(outcome::refused), 0)
      << keep_alive.summary() << " / " << close.summary();
  EXPECT_EQ(keep_alive.count(outcome::timeout) + close.count(outcome::timeout), 0);
  // Only requests in flight inside the killed worker may fail: at most one per connection.
  EXPECT_LE(keep_alive.failures(), 4) << keep_alive.summary();
  EXPECT_LE(close.failures(), 4) << close.summary();
  EXPECT_NE(r.ready_workers().at(1), first);
}

// The same ten restarts with the plain Go peer: graceful-run hands the socket over without a
// refused connection, and with a new connection per request nothing fails. With keep-alive,
// Go's Shutdown closes idle connections that a busy client may be sending on at that instant
// (about one failed request per busy connection per restart, as measured in bench/): that is
// the worker's doing, so here it is counted and printed, and only refusals are asserted.
TEST_F(graceful_run_go, plain_go_http_peer_restarts_ten_times_without_a_refused_connection) {
  auto peer = go_http();
  if (peer.empty()) GTEST_SKIP() << "bench/peers/go-http is not available";
  runner r({"--listen", "http=127.0.0.1:0", "--shutdown-timeout", "10s"}, {peer, "-listen-fds"});
  int port = r.port("http");
  ASSERT_TRUE(r.wait_for("ready (READY=1)", 10s)) << r.output();
  load keep_alive(port, 4, true);
  load close(port, 4, false);
  ASSERT_TRUE(eventually([&] { return close.count(outcome::ok) > 50; }, deadline::after(10s)));
  for (int i = 1; i <= 10; ++i) {
    r.proc().signal(SIGHUP);
    ASSERT_TRUE(r.wait_count("upgrade complete", i, 10s)) << r.output();
    long before = close.count(outcome::ok);
    ASSERT_TRUE(eventually([&] { return close.count(outcome::ok) > before + 20; }, deadline::after(10s)));
  }
  keep_alive.stop();
  close.stop();
  std::printf("go-http, 10 SIGHUP restarts: keep-alive %s| close %s\n", keep_alive.summary().c_str(),
              close.summary().c_str());
  EXPECT_EQ(close.failures(), 0) << close.summary();
  EXPECT_EQ(keep_alive.count(outcome::refused) + close.count(outcome::refused), 0);
  EXPECT_EQ(keep_alive.count(outcome::timeout), 0);
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(15s)), 0) << r.output();
}

} // namespace
} // namespace graceful::test
