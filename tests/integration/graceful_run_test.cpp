// graceful-run with a worker whose behaviour each test chooses (tests/programs/run-worker):
// the socket-activation contract, readiness, upgrades that fail, stop, crash, reaping.

#include <fcntl.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

#include <filesystem>
#include <set>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "graceful_run.hpp"
#include "load.hpp"
#include "processes.hpp"
#include "sockets.hpp"
#include "temp_dir.hpp"

namespace graceful::test {
namespace {

std::string worker() { return bin("graceful-run-test-worker"); }

using namespace std::chrono_literals;

// The worker command reads its flags from a file at each start, so a test can make the
// next generation behave differently ("sh -c 'exec ...'" keeps the pid).
std::vector<std::string> configurable_worker(const std::string& flags_file) {
  return {"sh", "-c", "exec " + worker() + " $(cat " + flags_file + ")"};
}
void set_flags(const std::string& flags_file, const std::string& flags) {
  std::ofstream(flags_file) << flags << "\n";
}

// /proc/PID/fd/N -> "socket:[inode]", "" when it cannot be read
std::string fd_target(pid_t pid, int fd) {
  char buf[256] = {0};
  auto p = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

TEST(graceful_run, worker_sees_exactly_the_given_sockets_by_socket_activation) {
  temp_dir dir;
  // An fd graceful-run inherits without close-on-exec must not reach the worker.
  int stray = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(stray, 3);
  runner r({"--listen", "http=127.0.0.1:0", "--listen", "admin=127.0.0.1:0"},
           {worker(), "--report", dir / "report"}, {stray});
  ::close(stray);
  int port = r.port("http");
  ASSERT_GT(port, 0) << r.output();
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir / "report"); }, deadline::after(5s)))
      << r.output();
  ASSERT_TRUE(r.wait_for(" ready (")) << r.output();  // the report is written before READY=1
  std::string rep = read_file(dir / "report");
  auto ready = r.ready_workers();
  ASSERT_EQ(ready.size(), 1u) << r.output();
  pid_t w = ready[0];
  EXPECT_NE(rep.find("pid=" + std::to_string(w) + "\n"), std::string::npos) << rep;
  EXPECT_NE(rep.find("LISTEN_PID=" + std::to_string(w) + "\n"), std::string::npos) << rep;
  EXPECT_NE(rep.find("LISTEN_FDS=2\n"), std::string::npos) << rep;
  EXPECT_NE(rep.find("LISTEN_FDNAMES=http:admin\n"), std::string::npos) << rep;
  EXPECT_NE(rep.find("NOTIFY_SOCKET=@graceful-run/"), std::string::npos) << rep;
  // fds 0-2, the two sockets at 3 and 4, and nothing else.
  std::set<int> fds;
  std::istringstream lines(rep);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("fd ")) fds.insert(std::atoi(line.c_str() + 3));
  EXPECT_EQ(fds, (std::set<int>{0, 1, 2, 3, 4})) << rep;
  EXPECT_NE(rep.find("fd 3 socket:["), std::string::npos) << rep;
  EXPECT_NE(rep.find("fd 4 socket:["), std::string::npos) << rep;
  // They are graceful-run's own listening sockets, held across workers.
  // (Only fds that can be read count: an unreadable one must not match an unreadable one.)
  std::set<std::string> held;
  for (int fd = 3; fd < 64; ++fd)
    if (auto t = fd_target(r.pid(), fd); !t.empty()) held.insert(t);
  ASSERT_TRUE(fd_target(w, 3).starts_with("socket:[")) << "fd 3 of worker " << w << ": '" << fd_target(w, 3) << "'";
  ASSERT_TRUE(fd_target(w, 4).starts_with("socket:[")) << "fd 4 of worker " << w << ": '" << fd_target(w, 4) << "'";
  EXPECT_TRUE(held.count(fd_target(w, 3))) << fd_target(w, 3);
  EXPECT_TRUE(held.count(fd_target(w, 4))) << fd_target(w, 4);
  EXPECT_FALSE(fd_target(w, 0).starts_with("socket:")) << fd_target(w, 0);
  // And the worker serves on them.
  EXPECT_EQ(get_body(port), std::to_string(w) + "\n");
}

// graceful-run under a systemd .socket unit: it adopts the socket passed to it (LISTEN_FDS
// for its own pid) and hands it on to each worker under the same name.
TEST(graceful_run, sockets_passed_to_graceful_run_by_systemd_are_handed_on) {
  auto sock = listen_tcp("127.0.0.1", 64);
  ASSERT_TRUE(sock.fd);
  int port = sock.port;
  child c(socket_activated({bin("graceful-run"), "--", worker()}, sock.fd.get(), "web"));
  sock.fd.reset();
  ASSERT_TRUE(c.wait_for_output("listening web=127.0.0.1:" + std::to_string(port), deadline::after(5s)))
      << c.output();
  ASSERT_TRUE(c.wait_for_output(" ready (", deadline::after(5s))) << c.output();
  auto w = pids_in(c.output(), "worker ", " ready");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(get_body(port), std::to_string(w[0]) + "\n");
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
}

TEST(graceful_run, sigterm_is_forwarded_and_graceful_run_exits_with_the_worker_status) {
  runner r({"--listen", "http=127.0.0.1:0", "--shutdown-timeout", "5s"}, {worker(), "--term-exit", "7"});
  ASSERT_TRUE(r.wait_for(" ready (")) << r.output();
  pid_t w = r.ready_workers().at(0);
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(5s)), 7) << r.output();
  EXPECT_FALSE(alive(w));
}

TEST(graceful_run, sigint_is_forwarded_too) {
  runner r({}, {worker(), "--term-exit", "0"});
  ASSERT_TRUE(r.wait_for(" ready (")) << r.output();
  r.proc().signal(SIGINT);
  EXPECT_EQ(r.proc().wait(deadline::after(5s)), 0) << r.output();
}

TEST(graceful_run, worker_ignoring_sigterm_is_killed_at_the_shutdown_deadline) {
  runner r({"--listen", "http=127.0.0.1:0", "--shutdown-timeout", "300ms"}, {worker(), "--ignore-term"});
  ASSERT_TRUE(r.wait_for(" ready (")) << r.output();
  pid_t w = r.ready_workers().at(0);
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(5s)), 128 + SIGKILL) << r.output();
  EXPECT_FALSE(alive(w));
  EXPECT_NE(r.output().find("SIGKILL"), std::string::npos) << r.output();
}

TEST(graceful_run, crashed_worker_is_restarted_and_its_socket_never_refuses) {
  runner r({"--listen", "http=127.0.0.1:0", "--restart-backoff", "300ms"}, {worker()});
  int port = r.port("http");
  ASSERT_TRUE(r.wait_for(" ready (")) << r.output();
  pid_t first = r.ready_workers().at(0);
  ::kill(first, SIGKILL);
  // No worker for 300 ms: the connection waits in graceful-run's listen queue and is
  // answered by the restarted worker.
  ASSERT_TRUE(r.wait_for("was killed by SIGKILL")) << r.output();
  auto body = get_body(port);
  ASSERT_TRUE(body.has_value()) << r.output();
  // The worker may answer before graceful-run has logged its READY=1.
  ASSERT_TRUE(r.wait_count(" ready (", 2)) << r.output();
  auto ready = r.ready_workers();
  ASSERT_EQ(ready.size(), 2u) << r.output();
  EXPECT_NE(ready[1], first);
  EXPECT_EQ(*body, std::to_string(ready[1]) + "\n");
}

TEST(graceful_run, crash_loop_backs_off_exponentially) {
  runner r({"--restart-backoff", "50ms", "--restart-backoff-max", "200ms"}, {worker(), "--crash-after", "0"});
  ASSERT_TRUE(r.wait_count("restarting the worker in", 5, 10s)) << r.output();
  auto out = r.output();
  EXPECT_NE(out.find("restarting the worker in 50ms"), std::string::npos) << out;
  EXPECT_NE(out.find("restarting the worker in 100ms"), std::string::npos) << out;
  EXPECT_NE(out.find("restarting the worker in 200ms"), std::string::npos) << out;
  EXPECT_EQ(out.find("restarting the worker in 400ms"), std::string::npos) << out;
  // Stopped while waiting to restart: exits with the crashed worker's status.
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(5s)), 3) << r.output();
}

TEST(graceful_run, sighup_replaces_the_worker_once_the_new_one_is_ready) {
  temp_dir dir;
  set_flags(dir / "flags", "");
  runner r({"--listen", "http=127.0.0.1:0", "--shutdown-timeout", "5s"}, configurable_worker(dir / "flags"));
  int port = r.port("http");
  ASSERT_TRUE(r.wait_for(" ready (", 5s)) << r.output();
  pid_t old = r.ready_workers().at(0);
  // The next worker says READY=1 only once the test creates dir/go: until then the upgrade
  // is in progress, however slow the machine.
  set_flags(dir / "flags", "--ready-when " + (dir / "go"));
  r.proc().signal(SIGHUP);
  ASSERT_TRUE(r.wait_for("(generation 2, upgrade)")) << r.output();
  // Not ready yet: the old one serves, and a second SIGHUP is refused.
  EXPECT_EQ(get_body(port), std::to_string(old) + "\n");
  r.proc().signal(SIGHUP);
  ASSERT_TRUE(r.wait_for("SIGHUP refused: an upgrade is in progress")) << r.output();
  EXPECT_EQ(r.output().find("upgrade complete"), std::string::npos) << r.output();
  std::ofstream(dir / "go") << "";
  ASSERT_TRUE(r.wait_for("upgrade complete")) << r.output();
  pid_t fresh = r.ready_workers().at(1);
  EXPECT_NE(fresh, old);
  EXPECT_TRUE(eventually([&] { return !alive(old); }, deadline::after(5s)));
  EXPECT_EQ(get_body(port), std::to_string(fresh) + "\n");
  EXPECT_EQ(count_of(r.output(), "SIGHUP: upgrading"), 1) << r.output();
}

TEST(graceful_run, new_worker_that_never_becomes_ready_leaves_the_old_one_serving) {
  temp_dir dir;
  set_flags(dir / "flags", "");
  // 2 s: long enough that the worker below which exits at once always does so before the
  // timeout, even started under ASan on a loaded machine (400 ms was not: one such start took
  // 420 ms, and the timeout, not the exit, ended that upgrade).
  runner r({"--listen", "http=127.0.0.1:0", "--upgrade-timeout", "2s"}, configurable_worker(dir / "flags"));
  int port = r.port("http");
  ASSERT_TRUE(r.wait_for(" ready (")) << r.output();
  pid_t old = r.ready_workers().at(0);

  set_flags(dir / "flags", "--no-ready");
  r.proc().signal(SIGHUP);
  ASSERT_TRUE(r.wait_for("was not ready within --upgrade-timeout 2s")) << r.output();
  auto bad = pids_in(r.output(), "worker ", " started (generation 2");
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_TRUE(eventually([&] { return !alive(bad[0]); }, deadline::after(5s)));
  EXPECT_TRUE(alive(old));
  EXPECT_EQ(get_body(port), std::to_string(old) + "\n");

  // One that exits at once: same outcome, with its status in the log.
  set_flags(dir / "flags", "--crash-after 0 --no-ready");
  r.proc().signal(SIGHUP);
  ASSERT_TRUE(r.wait_for("exited with code 3 before it was ready; keeping worker " + std::to_string(old)))
      << r.output();
  EXPECT_EQ(get_body(port), std::to_string(old) + "\n");

  // The next good worker upgrades.
  set_flags(dir / "flags", "");
  r.proc().signal(SIGHUP);
  ASSERT_TRUE(r.wait_for("upgrade complete")) << r.output();
  EXPECT_TRUE(eventually([&] { return !alive(old); }, deadline::after(5s)));
}

TEST(graceful_run, ready_url_makes_a_worker_ready_without_notify) {
  // The ready URL names the port, so the test binds it (port 0) and hands it to graceful-run
  // as systemd would; graceful-run passes it on to the worker.
  auto sock = listen_tcp("127.0.0.1", 64);
  ASSERT_TRUE(sock.fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(sock.port) + "/";
  child c(socket_activated({bin("graceful-run"), "--ready-url", url, "--", worker(), "--no-ready"}, sock.fd.get(), "http"));
  sock.fd.reset();
  ASSERT_TRUE(c.wait_for_output("ready (" + url + ")", deadline::after(5s))) << c.output();
  c.signal(SIGTERM);
  EXPECT_TRUE(c.wait(deadline::after(5s)).has_value()) << c.output();
  for (pid_t w : pids_in(c.output(), "worker ", " started"))
    if (alive(w)) ::kill(w, SIGKILL);
}

TEST(graceful_run, ready_after_makes_a_silent_worker_ready) {
  runner r({"--ready-after", "100ms"}, {worker(), "--no-ready"});
  ASSERT_TRUE(r.wait_for(" ready (--ready-after)")) << r.output();
  r.proc().signal(SIGHUP);
  EXPECT_TRUE(r.wait_for("upgrade complete")) << r.output();
}

// READY=1 counts only from the worker (or its descendants), by the pid the kernel attaches
// (SCM_CREDENTIALS): another process that finds the socket cannot trigger an upgrade step.
TEST(graceful_run, ready_from_a_process_that_is_not_the_worker_is_ignored) {
  temp_dir dir;
  runner r({}, {worker(), "--no-ready", "--report", dir / "report"});
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir / "report"); }, deadline::after(5s)));
  std::string rep = read_file(dir / "report");
  auto at = rep.find("NOTIFY_SOCKET=@");
  ASSERT_NE(at, std::string::npos) << rep;
  std::string name = rep.substr(at + 15, rep.find('\n', at) - at - 15);
  int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  const char msg[] = "READY=1";
  EXPECT_EQ(::sendto(s, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&a), len),
            static_cast<ssize_t>(sizeof msg - 1));
  ::close(s);
  r.proc().signal(SIGHUP);
  ASSERT_TRUE(r.wait_for("SIGHUP refused: worker")) << r.output();
  EXPECT_EQ(r.output().find(" ready ("), std::string::npos) << r.output();
}

TEST(graceful_run, leaves_no_zombie_and_no_orphan_behind) {
  temp_dir dir;
  runner r({"--listen", "http=127.0.0.1:0", "--shutdown-timeout", "2s"},
           {worker(), "--zombies", "3", "--orphan", dir / "orphan"});
  ASSERT_TRUE(r.wait_for(" ready (")) << r.output();
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir / "orphan"); }, deadline::after(5s)));
  pid_t orphan = std::atoi(read_file(dir / "orphan").c_str());
  ASSERT_GT(orphan, 0);
  // The orphan's parent exited: it came back to graceful-run (PR_SET_CHILD_SUBREAPER).
  EXPECT_TRUE(eventually([&] { return parent_of(orphan) == r.pid(); }, deadline::after(5s)));
  // An upgrade makes the first worker exit; its 3 unreaped children become ours and are reaped.
  r.proc().signal(SIGHUP);
  ASSERT_TRUE(r.wait_for("upgrade complete")) << r.output();
  ASSERT_TRUE(r.wait_for("old worker")) << r.output();
  EXPECT_TRUE(eventually([&] { return zombies_of(r.pid()) == 0; }, deadline::after(5s)))
      << zombies_of(r.pid()) << " zombies";
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(5s)), 0) << r.output();
  EXPECT_FALSE(alive(orphan)) << r.output();
}

// graceful-server knows nothing of graceful-run: it adopts the socket named "http" by systemd
// socket activation (port 0 in its --listen accepts whatever port it is given), says READY=1,
// and drains on SIGTERM. Five SIGHUPs under keep-alive and close load lose nothing.
TEST(graceful_run, graceful_server_serves_the_given_socket_and_restarts_without_a_failed_request) {
  if (!std::filesystem::exists(bin("graceful-server"))) GTEST_SKIP() << "graceful-server not built";
  runner r({"--listen", "http=127.0.0.1:0", "--shutdown-timeout", "10s"},
           {bin("graceful-server"), "--listen", "127.0.0.1:0"});
  int port = r.port("http");
  ASSERT_GT(port, 0) << r.output();
  ASSERT_TRUE(r.wait_for(" ready (READY=1)", 10s)) << r.output();
  EXPECT_NE(r.output().find("(port " + std::to_string(port) + ")"), std::string::npos) << r.output();
  ASSERT_TRUE(get_body(port).has_value()) << r.output();
  auto seen = restarts_under_load(r, port, 5);
  ASSERT_TRUE(seen.done) << seen.error << "\n" << r.output();
  std::printf("graceful-server, 5 SIGHUP restarts: %s\n", seen.summary.c_str());
  EXPECT_EQ(seen.keep_alive_failures, 0) << seen.summary;
  EXPECT_EQ(seen.close_failures, 0) << seen.summary;
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(15s)), 0) << r.output();
}

TEST(graceful_run, bad_usage_exits_2_with_a_message) {
  auto run = [](std::vector<std::string> args) {
    std::vector<std::string> argv{bin("graceful-run")};
    argv.insert(argv.end(), args.begin(), args.end());
    child c({argv});
    auto st = c.wait(deadline::after(5s));
    return std::make_pair(st.value_or(-1), c.output());
  };
  auto [st1, out1] = run({});
  EXPECT_EQ(st1, 2) << out1;
  auto [st2, out2] = run({"--shutdown-timeout", "soon", "--", "true"});
  EXPECT_EQ(st2, 2) << out2;
  EXPECT_NE(out2.find("duration"), std::string::npos) << out2;
  auto [st3, out3] = run({"--listen", "127.0.0.1:0", "--", "true"});
  EXPECT_EQ(st3, 2) << out3;
  EXPECT_NE(out3.find("NAME=ADDR"), std::string::npos) << out3;
  auto [st4, out4] = run({"--listen", "a:b=127.0.0.1:0", "--", "true"});
  EXPECT_EQ(st4, 2) << out4;
  auto [st5, out5] = run({"--ready-url", "http://example.com/", "--", "true"});
  EXPECT_EQ(st5, 2) << out5;
  auto [st6, out6] = run({"--listen", "http=nowhere", "--", "true"});
  EXPECT_EQ(st6, 2) << out6;
  auto [st7, out7] = run({"--", "/nonexistent/graceful-run-test-command"});
  EXPECT_EQ(st7, 127) << out7;
  EXPECT_NE(out7.find("cannot start"), std::string::npos) << out7;
}

TEST(graceful_run, restart_never_exits_with_the_worker_status) {
  runner r({"--restart", "never"}, {worker(), "--crash-after", "100"});
  EXPECT_EQ(r.proc().wait(deadline::after(5s)), 3) << r.output();
}

} // namespace
} // namespace graceful::test
