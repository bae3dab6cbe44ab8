// The parent -> child hand-over with real processes: tests/programs/upgrade-test-server is
// started from a private directory, upgraded with SIGHUP, and observed from outside
// (which pid serves a connection, the pid file, the processes and fds left).
#include <atomic>
#include <cstring>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "upgrade_test_server.hpp"

namespace graceful::test {
namespace {

class handover : public server_test {};

// The socket inode behind an fd of another process ("socket:[123]").
std::string fd_target(pid_t pid, int fd) {
  char buf[256] = {};
  auto link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  ::readlink(link.c_str(), buf, sizeof buf - 1);
  return buf;
}

TEST_F(handover, sighup_starts_the_new_binary_and_the_old_process_exits_after_it_is_ready) {
  auto& old = start();
  int p = port();
  pid_t a = served_by(p);
  ASSERT_EQ(a, old.pid());
  EXPECT_EQ(pid_in_file(), a);
  old.signal(SIGHUP);
  ASSERT_EQ(old.wait(in(10000ms)), 0) << old.output();
  pid_t b = served_by(p);
  EXPECT_NE(b, 0) << "the port must still be served";
  EXPECT_NE(b, a);
  EXPECT_EQ(pid_in_file(), b) << "the new process rewrites the pid file once ready";
  EXPECT_TRUE(alive(b));
  EXPECT_NE(old.output().find("handed over"), std::string::npos) << old.output();
}

TEST_F(handover, runs_the_binary_now_at_the_start_path_not_the_old_inode) {
  auto& old = start();
  int p = port();
  // Deploy: the binary at the path is replaced (new inode) before SIGHUP. A script that
  // records it ran, then execs the real server, proves the new file was executed.
  auto real = dir_ / "real-server";
  fs::copy_file(bin("upgrade-test-server"), real);
  deploy_script("echo deployed > " + (dir_ / "ran").string() + "\nexec " + real.string() + " \"$@\"");
  old.signal(SIGHUP);
  ASSERT_EQ(old.wait(in(10000ms)), 0) << old.output();
  EXPECT_EQ(read_file((dir_ / "ran").string()), "deployed\n");
  EXPECT_NE(served_by(p), 0);
}

TEST_F(handover, connections_queued_during_the_hand_over_are_all_accepted) {
  // The new process takes 300 ms to become ready; clients connect all through it.
  auto& old = start({"--ready-delay", "300"});
  int p = port();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::set<pid_t> seen;
  std::mutex mu;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      while (!stop) {
        pid_t who = served_by(p);
        if (who == 0) {
          ++failed;
        } else {
          ++ok;
          std::lock_guard lk(mu);
          seen.insert(who);
        }
        std::this_thread::sleep_for(1ms);  // steady load, not a flood of TIME_WAIT sockets
      }
    });
  std::this_thread::sleep_for(100ms);
  old.signal(SIGHUP);
  EXPECT_EQ(old.wait(in(10000ms)), 0) << old.output();
  std::this_thread::sleep_for(200ms);
  stop = true;
  for (auto& c : clients) c.join();
  std::printf("hand-over under load: %d connections served, %d failed, %zu pids\n", ok.load(), failed.load(),
              seen.size());
  EXPECT_EQ(failed.load(), 0) << "no connection may be refused or reset during a hand-over";
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(seen.size(), 2u) << "both the old and the new process served";
}

TEST_F(handover, connections_in_the_accept_queue_when_the_old_process_stops_are_served_by_the_new_one) {
  // The old process is slow to accept (50 ms per connection), so a backlog builds up
  // that is still queued when the new process becomes ready.
  auto& old = start({"--serve-delay", "50"});
  int p = port();
  std::vector<int> socks;
  old.signal(SIGHUP);
  for (int i = 0; i < 40; ++i) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(p));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{5, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    socks.push_back(s);
  }
  int served = 0;
  std::set<std::string> pids;
  for (int s : socks) {
    char buf[32] = {};
    ssize_t n = ::recv(s, buf, sizeof buf - 1, 0);
    if (n > 0) {
      ++served;
      pids.insert(buf);
    }
    ::close(s);
  }
  EXPECT_EQ(old.wait(in(10000ms)), 0);
  EXPECT_EQ(served, 40) << "every queued connection is accepted by one process or the other";
  EXPECT_EQ(pids.size(), 2u);
}

TEST_F(handover, the_new_process_inherits_only_the_named_sockets_and_stdio) {
  // --leak-fd: the old process holds an fd without FD_CLOEXEC, as a careless library would.
  auto& old = start({"--listen", "admin=127.0.0.1:0", "--fd-report", (dir_ / "fds").string(), "--leak-fd"});
  // Everything the old process holds, to compare with what the child got.
  std::set<std::string> listening, held;
  for (auto& e : fs::directory_iterator("/proc/" + std::to_string(old.pid()) + "/fd")) {
    int n = std::stoi(e.path().filename().string());
    auto t = fd_target(old.pid(), n);
    if (n > 2) held.insert(t);
    if (t.starts_with("socket:")) listening.insert(t);
  }
  old.signal(SIGHUP);
  ASSERT_EQ(old.wait(in(10000ms)), 0) << old.output();
  pid_t b = pid_in_file();
  auto report = read_file((dir_ / ("fds." + std::to_string(b))).string());
  ASSERT_FALSE(report.empty());
  std::istringstream lines(report);
  std::map<int, std::string> fds;
  int fd;
  std::string target;
  while (lines >> fd >> target) fds[fd] = target;
  // 0-2 stdio, 3-4 the two listeners (names sorted: admin, http), 5 the ready socket.
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(fds.count(i)) << "fd " << i << " missing:\n" << report;
  // Nothing else of the old process's (its signalfd, eventfd, the fd it leaked without
  // FD_CLOEXEC). A sanitizer runtime may open fds of its own before main: those are new.
  for (auto& [n, what] : fds) {
    if (n > 5) {
      EXPECT_FALSE(held.count(what)) << "fd " << n << " (" << what << ") leaked:\n" << report;
    }
  }
  EXPECT_EQ(std::count_if(fds.begin(), fds.end(), [](auto& kv) { return kv.second.starts_with("socket:"); }), 3)
      << report;
  EXPECT_TRUE(listening.count(fds[3])) << fds[3] << " is not one of the old process's sockets";
  EXPECT_TRUE(listening.count(fds[4])) << fds[4];
  EXPECT_TRUE(fds[5].starts_with("socket:"));
  EXPECT_FALSE(listening.count(fds[5])) << "fd 5 is the new readiness socket, not an old fd";
}

TEST_F(handover, a_binary_that_exits_at_once_leaves_the_old_process_serving_and_the_next_good_one_upgrades) {
  auto& old = start();
  int p = port();
  pid_t a = old.pid();
  deploy_script("exit 3");
  old.signal(SIGHUP);
  ASSERT_TRUE(old.wait_for_output("failed before it was ready", in(5000ms))) << old.output();
  EXPECT_NE(old.output().find("exited with code 3"), std::string::npos) << old.output();
  EXPECT_EQ(served_by(p), a);
  EXPECT_EQ(pid_in_file(), a) << "the pid file is unchanged";
  EXPECT_TRUE(children_of(a).empty()) << "the failed child is reaped, not a zombie";
  deploy(bin("upgrade-test-server"));
  old.signal(SIGHUP);
  ASSERT_EQ(old.wait(in(10000ms)), 0) << old.output();
  pid_t b = served_by(p);
  EXPECT_NE(b, 0);
  EXPECT_NE(b, a);
  EXPECT_EQ(pid_in_file(), b);
}

TEST_F(handover, a_binary_that_never_becomes_ready_is_killed_after_the_upgrade_timeout) {
  auto& old = start({"--upgrade-timeout", "300"});
  int p = port();
  pid_t a = old.pid();
  deploy_script("exec sleep 30");
  old.signal(SIGHUP);
  ASSERT_TRUE(old.wait_for_output("was not ready within 300 ms", in(5000ms))) << old.output();
  EXPECT_NE(old.output().find("killed by signal"), std::string::npos) << old.output();
  EXPECT_EQ(served_by(p), a);
  EXPECT_EQ(pid_in_file(), a);
  EXPECT_TRUE(children_of(a).empty()) << "the hung child is killed and reaped";
  deploy(bin("upgrade-test-server"));
  old.signal(SIGHUP);
  ASSERT_EQ(old.wait(in(10000ms)), 0) << old.output();
  EXPECT_NE(served_by(p), a);
}

TEST_F(handover, a_new_process_that_is_never_ready_is_stopped_with_sigterm_and_answers_what_it_accepted) {
  // The old process accepts nothing here, so a connection made while the new one runs is the
  // new one's. The new one accepts it but never says ready: at the upgrade timeout it must
  // get SIGTERM, not SIGKILL, so that it answers what it holds before it exits.
  auto& old = start({"--upgrade-timeout", "1500", "--no-accept"});
  int p = port();
  deploy_script("exec " + bin("upgrade-test-server") + " \"$@\" --accept --never-ready");
  old.signal(SIGHUP);
  ASSERT_TRUE(old.wait_for_output("never ready pid=", in(5000ms))) << old.output();
  auto out = old.output();
  pid_t fresh = std::atoi(out.c_str() + out.find("never ready pid=") + std::strlen("never ready pid="));
  ASSERT_GT(fresh, 0);
  EXPECT_EQ(std::atoi(fetch(p).c_str()), fresh) << "the connection it accepted is answered\n" << old.output();
  ASSERT_TRUE(old.wait_for_output("was not ready within 1500 ms", in(5000ms))) << old.output();
  EXPECT_NE(old.output().find("SIGTERM: exited with code 0"), std::string::npos) << old.output();
  EXPECT_TRUE(eventually([&] { return children_of(old.pid()).empty(); }, in(5000ms))) << "reaped";
  EXPECT_TRUE(alive(old.pid())) << "the old process keeps serving";
}

TEST_F(handover, a_sighup_during_an_upgrade_is_refused_with_a_log_line) {
  auto& old = start({"--upgrade-timeout", "2000"});
  deploy_script("exec sleep 30");
  old.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return children_of(old.pid()).size() == 1; }, in(3000ms)));
  old.signal(SIGHUP);
  EXPECT_TRUE(old.wait_for_output("refused: an upgrade is already in progress", in(3000ms))) << old.output();
  EXPECT_EQ(children_of(old.pid()).size(), 1u) << "no second new process";
}

TEST_F(handover, sigterm_during_an_upgrade_stops_both_processes) {
  auto& old = start();
  deploy_script("exec sleep 30");
  old.signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return children_of(old.pid()).size() == 1; }, in(3000ms)));
  pid_t child = children_of(old.pid())[0];
  old.signal(SIGTERM);
  EXPECT_EQ(old.wait(in(8000ms)), 0) << old.output();
  EXPECT_TRUE(wait_gone(child, in(2000ms))) << "the starting process is stopped too";
  EXPECT_NE(old.output().find("stopped the new pid"), std::string::npos) << old.output();
}

TEST_F(handover, upgrades_repeatedly_each_time_to_a_new_pid) {
  start();
  int p = port();
  std::set<pid_t> pids{served_by(p)};
  for (int i = 0; i < 5; ++i) {
    pid_t cur = pid_in_file();
    ASSERT_EQ(::kill(cur, SIGHUP), 0);
    ASSERT_TRUE(eventually([&] { return pid_in_file() != cur && !alive(cur); }, in(10000ms))) << "upgrade " << i;
    EXPECT_TRUE(wait_gone(cur, in(2000ms))) << "old process " << cur << " is gone, not a zombie";
    pid_t now = served_by(p);
    EXPECT_EQ(now, pid_in_file());
    pids.insert(now);
  }
  EXPECT_EQ(pids.size(), 6u);
}

TEST_F(handover, an_unwritable_pid_file_is_a_clear_error_and_the_server_keeps_serving) {
  std::vector<std::string> argv{server_path().string(), "--listen", "http=127.0.0.1:0", "--addr-file", addr_file(),
                                "--pid-file", (dir_ / "missing-dir" / "pid").string()};
  auto& s = start_raw(argv);
  ASSERT_TRUE(s.wait_for_output("ready pid=", in(5000ms))) << s.output();
  EXPECT_NE(s.output().find("cannot write pid file"), std::string::npos) << s.output();
  EXPECT_EQ(served_by(port()), s.pid());
}

} // namespace
} // namespace graceful::test
