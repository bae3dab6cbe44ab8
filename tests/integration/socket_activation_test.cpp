// graceful-server under socket activation with no --listen: whoever starts it (graceful-run
// --listen, a systemd .socket unit) alone decides the addresses, and graceful-server serves
// every socket it is given, across its own upgrades too. (An explicit --listen must still
// match: upgrade_test's a_systemd_socket_on_another_address_than_listen_is_a_clear_error.)

#include <csignal>
#include <cstdlib>

#include <gtest/gtest.h>

#include "graceful_run.hpp"
#include "load.hpp"
#include "processes.hpp"
#include "sockets.hpp"
#include "temp_dir.hpp"

namespace graceful::test {
namespace {

using namespace std::chrono_literals;

TEST(graceful_run, graceful_server_without_listen_serves_every_socket_it_is_given) {
  runner r({"--listen", "http=127.0.0.1:0", "--listen", "admin=127.0.0.1:0", "--shutdown-timeout", "10s"},
           {bin("graceful-server"), "--threads", "1"});
  int http = r.port("http"), admin = r.port("admin");
  ASSERT_GT(http, 0) << r.output();
  ASSERT_GT(admin, 0) << r.output();
  ASSERT_TRUE(r.wait_for(" ready (READY=1)", 10s)) << r.output();
  EXPECT_TRUE(get_body(http).has_value()) << r.output();
  EXPECT_TRUE(get_body(admin).has_value()) << r.output();
  // A restart under load: the next worker is started the same way and serves both again.
  {
    load l(http, 2, true);
    ASSERT_TRUE(eventually([&] { return l.count(outcome::ok) > 20; }, deadline::after(10s))) << r.output();
    r.proc().signal(SIGHUP);
    ASSERT_TRUE(r.wait_for("upgrade complete", 15s)) << r.output();
    long before = l.count(outcome::ok);
    ASSERT_TRUE(eventually([&] { return l.count(outcome::ok) > before + 20; }, deadline::after(10s)));
    l.stop();
    EXPECT_EQ(l.failures(), 0) << l.summary();
  }
  EXPECT_TRUE(get_body(admin).has_value()) << r.output();
  // The worker never crashed (no restart after a failed start).
  EXPECT_EQ(r.output().find("restarting the worker"), std::string::npos) << r.output();
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(15s)), 0) << r.output();
}

// As systemd's graceful-server.socket with ListenStream=PORT makes it ([::]:PORT, named
// "http"), and graceful-server.service's ExecStart without --listen: served, and a SIGHUP
// upgrade hands the same socket to the new version, which also has no --listen.
TEST(graceful_server, without_listen_a_systemd_socket_alone_defines_the_address_across_upgrades) {
  auto sock = listen_tcp("::");
  if (!sock.fd) GTEST_SKIP() << "no IPv6 wildcard bind";
  int port = sock.port;
  temp_dir dir("sockact");
  std::string pid_file = dir / "server.pid";
  child c(socket_activated({bin("graceful-server"), "--pid-file", pid_file, "--threads", "1"}, sock.fd.get(), "http"));
  sock.fd.reset();
  auto pid = [&] { return static_cast<pid_t>(std::atoi(read_file(pid_file).c_str())); };
  ASSERT_TRUE(eventually([&] { return pid() == c.pid(); }, deadline::after(10s))) << c.output();
  EXPECT_NE(c.output().find("inherited from systemd"), std::string::npos) << c.output();
  EXPECT_TRUE(get_body(port).has_value()) << c.output();
  c.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return pid() > 0 && pid() != c.pid(); }, deadline::after(15s))) << c.output();
  pid_t next = pid();
  EXPECT_EQ(c.wait(deadline::after(15s)), 0) << c.output();
  EXPECT_TRUE(get_body(port).has_value()) << c.output();
  ::kill(next, SIGTERM);
  EXPECT_TRUE(eventually([&] { return !alive(next); }, deadline::after(15s)));
  if (alive(next)) ::kill(next, SIGKILL);
}

} // namespace
} // namespace graceful::test
