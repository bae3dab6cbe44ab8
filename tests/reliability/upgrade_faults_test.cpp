// Faults around graceful-server's upgrade, and hostile environments and peers, driven from
// outside through the real program (the library-level cases are in tests/unit/upgrade and
// tests/integration/upgrade_test.cpp; these add what only the whole program can show).

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http_client.hpp"
#include "process.hpp"
#include "processes.hpp"
#include "figure.hpp"
#include "graceful_server.hpp"
#include "sockets.hpp"

using namespace graceful::test;
using namespace std::chrono_literals;
using graceful::deadline;
namespace fs = std::filesystem;

namespace {

/// graceful-server copied into a temp dir (so an upgrade runs whatever binary is there next),
/// with a pid file; the test is the subreaper of every process it starts (upgradable_server).
class upgrade_faults : public ::testing::Test {
protected:
  std::vector<std::string> argv(std::vector<std::string> extra = {}) const { return srv_.argv(std::move(extra)); }
  void start(std::vector<std::string> extra = {}) {
    ASSERT_TRUE(srv_.start(std::move(extra))) << (srv_.started() ? srv_.first().output() : "");
    adopt();
  }
  /// Starts `a` and waits for its port only (the pid file may be unwritable).
  void launch(std::vector<std::string> a) {
    ASSERT_TRUE(srv_.launch(child::spec{std::move(a)})) << srv_.first().output();
    adopt();
  }
  void adopt() {
    server_ = &srv_.first();
    port_ = srv_.port();
    dir_ = srv_.dir();
  }
  std::string pid_file() const { return srv_.pid_file(); }
  pid_t pid() const { return srv_.pid(); }

  upgradable_server srv_;
  fs::path dir_ = srv_.dir();
  int port_ = 0;
  child* server_ = nullptr;
};

} // namespace

namespace {

/// Sends `n` GET /slow?ms=1500 on their own connections: requests in flight on the old process.
std::vector<std::unique_ptr<http_conn>> slow_requests(int port, int n) {
  std::vector<std::unique_ptr<http_conn>> conns;
  for (int i = 0; i < n; ++i) {
    conns.push_back(std::make_unique<http_conn>(port));
    EXPECT_TRUE(conns.back()->send(get_request("/slow?ms=1500")));
  }
  return conns;
}

/// How many of them got their 200 with the full body; `closing` counts those with Connection: close.
int answered(std::vector<std::unique_ptr<http_conn>>& conns, int& closing) {
  int n = 0;
  closing = 0;
  for (auto& c : conns) {
    auto r = c->read_response(deadline::after(10s));
    if (r && r->status == 200 && r->body == "slept 1500 ms\n") {
      ++n;
      if (r->closes()) ++closing;
    }
  }
  return n;
}

} // namespace

TEST_F(upgrade_faults, a_new_binary_that_crashes_after_ready_loses_no_request_of_the_draining_old_one) {
  start();
  pid_t old = pid();
  constexpr int in_flight = 4;
  auto conns = slow_requests(port_, in_flight);
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(::kill(old, SIGHUP), 0);
  // The old process heard "ready" and drains: now the new one crashes.
  ASSERT_TRUE(server_->wait_for_output("this process stops accepting and drains", deadline::after(15s)))
      << server_->output();
  pid_t fresh = pid();
  ASSERT_NE(fresh, old);
  ASSERT_EQ(::kill(fresh, SIGKILL), 0);
  int closing = 0;
  int ok = answered(conns, closing);
  auto st = server_->wait(deadline::after(15s));
  bool gone = eventually([&] { reap_exited(); return children_of(::getpid()).empty(); }, deadline::after(5s));
  figure("crash after ready: new pid SIGKILLed once the old one drains; old answered " + std::to_string(ok) + "/" +
         std::to_string(in_flight) + " in-flight requests (" + std::to_string(closing) +
         " with Connection: close), exit " + (st ? std::to_string(*st) : "none") + "; processes left: " +
         (gone ? "none" : "some"));
  EXPECT_EQ(ok, in_flight) << server_->output();
  EXPECT_EQ(closing, in_flight);
  EXPECT_EQ(st, 0) << server_->output();
  EXPECT_TRUE(gone);
}

TEST_F(upgrade_faults, a_new_binary_that_crashes_as_it_writes_the_pid_file_leaves_a_defined_state) {
  start();
  pid_t old = pid();
  constexpr int in_flight = 4;
  auto conns = slow_requests(port_, in_flight);
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(::kill(old, SIGHUP), 0);
  // The new process writes the pid file just before telling the old one it is ready: kill it
  // the moment the file changes, so that the old one may or may not have heard "ready".
  ASSERT_TRUE(eventually([&] { return pid() != old && pid() > 0; }, deadline::after(15s))) << server_->output();
  pid_t fresh = pid();
  ASSERT_EQ(::kill(fresh, SIGKILL), 0);
  int closing = 0;
  int ok = answered(conns, closing);
  bool rolled_back = server_->wait_for_output("failed before it was ready", deadline::after(3s));
  std::string outcome;
  if (rolled_back) {
    // The old process still serves, and the pid file names it again.
    bool named = eventually([&] { return pid() == old; }, deadline::after(5s));
    auto r = http_get(port_, "/");
    outcome = std::string("rolled back; pid file names the old process again: ") + (named ? "yes" : "NO") +
              "; serving " + (r && r->status == 200 ? "yes" : "no");
    EXPECT_TRUE(named) << "pid file names " << pid() << ", the dead new process";
    EXPECT_TRUE(r && r->status == 200);
    EXPECT_FALSE(server_->exited());
  } else {
    auto st = server_->wait(deadline::after(15s));
    outcome = "handed over; old exited " + (st ? std::to_string(*st) : std::string("none"));
    EXPECT_EQ(st, 0) << server_->output();
  }
  figure("crash at the pid file: " + outcome + "; " + std::to_string(ok) + "/" + std::to_string(in_flight) +
         " in-flight requests of the old process answered");
  EXPECT_EQ(ok, in_flight) << server_->output();
}

TEST_F(upgrade_faults, forged_listen_fds_pointing_at_a_file_make_graceful_server_refuse_to_start_with_a_clear_message) {
  std::string cmd = "exec 3</etc/hostname; LISTEN_PID=$$ LISTEN_FDS=1 exec";
  for (const auto& a : argv()) cmd += " '" + a + "'";
  child c(child::spec{{"/bin/sh", "-c", cmd}});
  auto st = c.wait(deadline::after(10s));
  figure(std::string("forged LISTEN_FDS -> exit ") + (st ? std::to_string(*st) : "none"));
  ASSERT_TRUE(st) << c.output();
  EXPECT_EQ(*st, 2) << "a configuration error, like a bad flag:\n" << c.output();
  EXPECT_NE(c.output().find("not a socket"), std::string::npos) << c.output();
  EXPECT_EQ(c.output().find("listening on"), std::string::npos) << "served on a forged fd:\n" << c.output();
}

namespace {

/// A TCP socket on 127.0.0.1:port (listening or not), moved to fd >= 50.
int tcp_socket_at(int port, bool listening) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  if (listening) {
    EXPECT_EQ(::listen(s, 16), 0);
  }
  int high = ::fcntl(s, F_DUPFD_CLOEXEC, 50);
  ::close(s);
  return high;
}

} // namespace

TEST_F(upgrade_faults, socket_activation_configuration_errors_exit_2_with_a_message_naming_the_fd) {
  struct bad_setup {
    std::string what, shell, message;
    std::vector<int> fds;  // sockets the shell moves to fd 3, 4, ...
  };
  int unlistened = tcp_socket_at(port_, false);
  int first = tcp_socket_at(0, true), second = tcp_socket_at(0, true);
  auto move = [](const std::vector<int>& fds) {
    std::string m = "exec";
    for (std::size_t i = 0; i < fds.size(); ++i)
      m += " " + std::to_string(3 + i) + "<&" + std::to_string(fds[i]) + " " + std::to_string(fds[i]) + "<&-";
    return m + "; ";
  };
  std::vector<bad_setup> setups{
      {"LISTEN_PID of another process", "exec 3</etc/hostname; LISTEN_PID=1 LISTEN_FDS=1 exec",
       "LISTEN_FDS=1 (fds 3 and up) is addressed to LISTEN_PID=1", {}},
      {"LISTEN_FDNAMES not matching LISTEN_FDS", "exec 3</etc/hostname; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=a:b exec",
       "LISTEN_FDS=1, LISTEN_FDNAMES='a:b'", {}},
      {"a socket that is not listening", "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec",
       "inherited fd 3 for 'http' (from systemd) is not a listening stream socket", {unlistened}},
      {"a duplicate name", "LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=http:http exec",
       "two inherited fds (3 and 4) are both named 'http'", {first, second}},
  };
  for (auto& b : setups) {
    std::string cmd = (b.fds.empty() ? "" : move(b.fds)) + b.shell;
    for (const auto& a : argv()) cmd += " '" + a + "'";
    child c(child::spec{{"/bin/bash", "-c", cmd}, {}, b.fds});  // bash: dash takes no fd above 9
    auto st = c.wait(deadline::after(10s));
    figure(b.what + " -> exit " + (st ? std::to_string(*st) : "none"));
    EXPECT_EQ(st, 2) << b.what << "\n" << c.output();
    EXPECT_NE(c.output().find(b.message), std::string::npos) << b.what << "\n" << c.output();
  }
  for (int fd : {unlistened, first, second}) ::close(fd);
}

TEST_F(upgrade_faults, a_new_process_whose_old_one_died_before_it_started_exits_instead_of_serving_on_its_own) {
  start();
  pid_t old = pid();
  // The next binary takes a second to start: time for the old process to die in between.
  fs::rename(srv_.binary(), srv_.binary() + ".real");
  {
    std::ofstream w(srv_.binary());
    w << "#!/bin/sh\nsleep 1\nexec '" << srv_.binary() << ".real' \"$@\"\n";
  }
  fs::permissions(srv_.binary(), fs::perms::owner_all);
  ASSERT_EQ(::kill(old, SIGHUP), 0);
  ASSERT_TRUE(server_->wait_for_output("upgrade: SIGHUP: upgrading", deadline::after(10s))) << server_->output();
  // A forced stop (the second SIGTERM's _Exit, a SIGKILL) leaves the new process orphaned.
  ASSERT_EQ(::kill(old, SIGKILL), 0);
  ASSERT_TRUE(server_->wait(deadline::after(10s)));
  bool gone = eventually([&] { reap_exited(); return children_of(::getpid()).empty(); }, deadline::after(15s));
  auto log = server_->output();
  bool abandoned = log.find("has exited; abandoning the upgrade") != std::string::npos;
  figure(std::string("old process SIGKILLed while the new one starts: the new one abandons the upgrade: ") +
         (abandoned ? "yes" : "NO") + "; processes left: " + (gone ? "none" : "some"));
  EXPECT_TRUE(abandoned) << log;
  EXPECT_TRUE(gone) << "the orphaned new process still runs\n" << log;
  EXPECT_EQ(log.find("listening on", log.find("upgrade: SIGHUP: upgrading")), std::string::npos)
      << "the orphan served on its own:\n" << log;
}

TEST_F(upgrade_faults, a_new_process_whose_parent_is_gone_when_it_is_ready_stops_with_exit_1) {
  // The test plays the parent: it hands over a listening socket, then closes its end of the
  // ready socket before the new process says ready, as a parent that died meanwhile would.
  int listening = tcp_socket_at(0, true);
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int ready = ::fcntl(sv[1], F_DUPFD_CLOEXEC, 60);
  ::close(sv[1]);
  ::close(sv[0]);
  std::string cmd = "exec 3<&" + std::to_string(listening) + " " + std::to_string(listening) + "<&- 4<&" +
                    std::to_string(ready) + " " + std::to_string(ready) + "<&-; GRACEFUL_UPGRADE_PROTOCOL=1 " +
                    "GRACEFUL_PARENT_PID=" + std::to_string(::getpid()) +
                    " GRACEFUL_LISTEN_FDS=1 GRACEFUL_LISTEN_FDNAMES=http GRACEFUL_READY_FD=4 exec";
  for (const auto& a : argv()) cmd += " '" + a + "'";
  child c(child::spec{{"/bin/bash", "-c", cmd}, {}, {listening, ready}});
  ::close(listening);
  ::close(ready);
  auto st = c.wait(deadline::after(15s));
  figure(std::string("hand-over parent gone at ready -> exit ") + (st ? std::to_string(*st) : "none"));
  ASSERT_TRUE(st) << "still running:\n" << c.output();
  EXPECT_EQ(*st, 1) << c.output();
  EXPECT_NE(c.output().find("exited before it heard that we are ready; abandoning the upgrade"), std::string::npos)
      << c.output();
  EXPECT_NE(c.output().find("hand-over abandoned"), std::string::npos) << c.output();
}

TEST_F(upgrade_faults, the_pid_file_is_not_written_through_a_symlink_and_the_server_still_serves) {
  auto target = dir_ / "victim";
  { std::ofstream(target) << "precious\n"; }
  fs::create_symlink(target, pid_file());
  launch(argv());
  auto r = http_get(port_, "/");
  bool serving = r && r->status == 200;
  bool logged = server_->wait_for_output("pid file", deadline::after(1s));
  // Not followed: the symlink was replaced by a regular file (written beside it, renamed
  // over it), or refused with an error in the log.
  bool replaced = fs::is_regular_file(fs::symlink_status(pid_file())) && pid() == server_->pid();
  figure(std::string("pid file symlink: victim ") + (read_file(target.string()) == "precious\n" ? "untouched" : "OVERWRITTEN") +
         ", symlink replaced by a regular file " + (replaced ? "yes" : "no") + ", serving " + (serving ? "yes" : "no") +
         ", error logged " + (logged ? "yes" : "no"));
  EXPECT_EQ(read_file(target.string()), "precious\n");
  EXPECT_TRUE(serving);
  EXPECT_TRUE(replaced || logged) << server_->output();
}

TEST_F(upgrade_faults, an_unwritable_pid_file_directory_is_a_clear_error_and_the_server_still_serves) {
  // Root ignores permission bits, so "unwritable" is a directory path through a regular file.
  auto file = dir_ / "not-a-dir";
  { std::ofstream(file) << "x"; }
  auto a = argv();
  a.back() = (file / "server.pid").string();
  launch(a);
  bool logged = server_->wait_for_output("cannot write pid file", deadline::after(5s));
  auto r = http_get(port_, "/");
  figure(std::string("unwritable pid file dir: error logged ") + (logged ? "yes" : "no") + ", serving " +
         (r && r->status == 200 ? "yes" : "no"));
  EXPECT_TRUE(logged) << server_->output();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(upgrade_faults, the_takeover_socket_is_private_and_refuses_a_peer_of_another_uid) {
  if (::geteuid() != 0) {
    // CI runs as root: there a skip would hide a regression, so it is a failure.
    if (std::getenv("CI")) FAIL() << "CI is set but this test needs root to connect as another uid";
    GTEST_SKIP() << "needs root to connect as another uid";
  }
  auto sock = (dir_ / "takeover.sock").string();
  start({"--takeover-socket", sock});
  ASSERT_TRUE(eventually([&] { return fs::exists(sock); }, deadline::after(5s)));
  struct stat sb{};
  ASSERT_EQ(::stat(sock.c_str(), &sb), 0);
  unsigned mode = sb.st_mode & 07777;
  // Loosen the mode so that the kernel lets the other user connect: SO_PEERCRED must refuse.
  ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  pid_t p = ::fork();
  if (p == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(10);
    auto reply = request_takeover(sock);
    if (reply.connect_errno != 0) _exit(11);
    _exit(reply.refused() ? 0 : 12);  // refused: an error line and no descriptors
  }
  int st = 0;
  ASSERT_EQ(::waitpid(p, &st, 0), p);
  bool refused_logged = server_->wait_for_output("takeover refused", deadline::after(5s));
  auto r = http_get(port_, "/");
  char mode_text[8];
  std::snprintf(mode_text, sizeof mode_text, "%04o", mode);
  figure(std::string("takeover socket: mode ") + mode_text + "; uid 65534 " +
         (WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "got no fds" : "GOT FDS or could not try") + ", refusal logged " +
         (refused_logged ? "yes" : "no") + ", old still serving " + (r && r->status == 200 && pid() == server_->pid() ? "yes" : "no"));
  EXPECT_EQ(mode & 0077, 0u) << "group/other may not connect";
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "10/11: could not try; 12: was not refused (or was handed descriptors)";
  EXPECT_TRUE(refused_logged) << server_->output();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(pid(), server_->pid());
}
