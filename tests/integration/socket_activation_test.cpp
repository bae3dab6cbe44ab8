// graceful-server under socket activation with no --listen: whoever starts it (graceful-run
// --listen, a systemd .socket unit) alone decides the addresses, and graceful-server serves
// every socket it is given, across its own upgrades too. (An explicit --listen must still
// match: upgrade_test's a_systemd_socket_on_another_address_than_listen_is_a_clear_error.)

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "graceful_run_support.hpp"

namespace graceful::test::run {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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
  int s = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) GTEST_SKIP() << "no IPv6 wildcard bind";
  ASSERT_EQ(::listen(s, 128), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  int port = ntohs(a.sin6_port);
  int high = ::fcntl(s, F_DUPFD_CLOEXEC, 50);
  ::close(s);
  char tmpl[] = "/tmp/graceful-sockact-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  std::string pid_file = (dir / "server.pid").string();
  auto fd = std::to_string(high);
  child c(child::spec{{"/bin/bash", "-c",
                       "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http; exec \"$0\" \"$@\" 3<&" + fd + " " +
                           fd + "<&-",
                       bin("graceful-server"), "--pid-file", pid_file, "--threads", "1"},
                      {},
                      {high}});
  ::close(high);
  auto pid = [&] { return static_cast<pid_t>(std::atoi(slurp(pid_file).c_str())); };
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
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace graceful::test::run
