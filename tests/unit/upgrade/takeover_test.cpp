// Takeover: a new process started by hand (not by the old one) takes the listening sockets
// over the old process's UNIX socket, and the old one drains.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include <netinet/in.h>

#include <graceful/upgrade/upgrader.hpp>

#include "sockets.hpp"
#include "upgrade_test_server.hpp"

namespace graceful::test {
namespace {

class takeover : public server_test {
protected:
  std::string sock() const { return (dir_ / "takeover.sock").string(); }
  std::vector<std::string> new_server(const std::string& addr_out) const {
    return {server_path().string(), "--listen", "http=127.0.0.1:0", "--pid-file", pid_file(), "--addr-file",
            addr_out, "--takeover", sock(), "--takeover-socket", sock()};
  }
};

TEST_F(takeover, a_process_started_by_hand_takes_the_sockets_and_the_old_one_drains) {
  auto& old = start({"--takeover-socket", sock()});
  int p = port();
  ASSERT_EQ(served_by(p), old.pid());
  auto& next = start_raw(new_server((dir_ / "addr2").string()));
  ASSERT_TRUE(next.wait_for_output("ready pid=", in(5000ms))) << next.output();
  EXPECT_NE(next.output().find("from=takeover"), std::string::npos) << next.output();
  EXPECT_EQ(old.wait(in(10000ms)), 0) << old.output();
  EXPECT_EQ(served_by(p), next.pid()) << "same port, new process";
  EXPECT_EQ(pid_in_file(), next.pid());
  // The new process offers takeover at the same path in turn: a third one can take over.
  auto& third = start_raw(new_server((dir_ / "addr3").string()));
  ASSERT_TRUE(third.wait_for_output("ready pid=", in(5000ms))) << third.output();
  EXPECT_EQ(next.wait(in(10000ms)), 0) << next.output();
  EXPECT_EQ(served_by(p), third.pid());
}

TEST_F(takeover, a_process_that_took_over_upgrades_with_sighup_despite_its_takeover_flag) {
  auto& old = start({"--takeover-socket", sock()});
  int p = port();
  auto& next = start_raw(new_server((dir_ / "addr2").string()));
  ASSERT_TRUE(next.wait_for_output("ready pid=", in(5000ms))) << next.output();
  ASSERT_EQ(old.wait(in(10000ms)), 0) << old.output();
  // Its child gets the same argv, --takeover included; the parent's hand-over wins.
  next.signal(SIGHUP);
  ASSERT_EQ(next.wait(in(10000ms)), 0) << next.output();
  pid_t third = served_by(p);
  EXPECT_NE(third, 0);
  EXPECT_NE(third, next.pid());
  EXPECT_EQ(pid_in_file(), third);
}

TEST_F(takeover, the_takeover_socket_is_created_mode_0600) {
  start({"--takeover-socket", sock()});
  struct stat st{};
  ASSERT_EQ(::lstat(sock().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(takeover, refuses_a_socket_path_that_is_group_or_world_writable) {
  auto& old = start({"--takeover-socket", sock()});
  ASSERT_EQ(::chmod(sock().c_str(), 0666), 0);
  auto& next = start_raw(new_server((dir_ / "addr2").string()));
  EXPECT_EQ(next.wait(in(5000ms)), 2) << next.output();
  EXPECT_NE(next.output().find("refusing takeover socket"), std::string::npos) << next.output();
  EXPECT_EQ(served_by(port()), old.pid()) << "the old process keeps serving";
}

TEST_F(takeover, refuses_a_symlink_at_the_socket_path) {
  auto& old = start({"--takeover-socket", sock()});
  auto link = (dir_ / "link.sock").string();
  fs::create_symlink(sock(), link);
  auto argv = new_server((dir_ / "addr2").string());
  argv[8] = link;  // --takeover <link>
  auto& next = start_raw(argv);
  EXPECT_EQ(next.wait(in(5000ms)), 2) << next.output();
  EXPECT_NE(next.output().find("a symlink"), std::string::npos) << next.output();
  EXPECT_EQ(served_by(port()), old.pid());
}

TEST_F(takeover, the_old_process_refuses_a_peer_of_another_uid) {
  if (::geteuid() != 0) {
    // CI runs as root: there a skip would hide a regression, so it is a failure.
    if (std::getenv("CI")) FAIL() << "CI is set but this test needs root to connect as another uid";
    GTEST_SKIP() << "needs root to connect as another uid";
  }
  auto& old = start({"--takeover-socket", sock()});
  // Loosen the mode so that the kernel lets the other user connect: SO_PEERCRED must still refuse.
  ASSERT_EQ(::chmod(sock().c_str(), 0666), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(10);
    auto reply = request_takeover(sock());
    if (reply.connect_errno != 0) _exit(11);
    _exit(reply.refused() ? 0 : 12);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "10/11: could not try; 12: was not refused";
  EXPECT_TRUE(old.wait_for_output("takeover refused: peer", in(2000ms))) << old.output();
  EXPECT_EQ(served_by(port()), old.pid());
}

TEST_F(takeover, a_new_process_that_dies_before_ready_leaves_the_old_one_serving) {
  auto& old = start({"--takeover-socket", sock()});
  auto argv = new_server((dir_ / "addr2").string());
  argv.insert(argv.end(), {"--ready-delay", "5000"});
  auto& next = start_raw(argv);
  ASSERT_TRUE(old.wait_for_output("over the takeover socket", in(5000ms))) << old.output();
  next.signal(SIGKILL);
  next.wait(in(2000ms));
  ASSERT_TRUE(old.wait_for_output("takeover failed", in(5000ms))) << old.output();
  EXPECT_EQ(served_by(port()), old.pid());
  EXPECT_EQ(pid_in_file(), old.pid());
  // And a later takeover succeeds.
  auto& again = start_raw(new_server((dir_ / "addr3").string()));
  ASSERT_TRUE(again.wait_for_output("ready pid=", in(5000ms))) << again.output();
  EXPECT_EQ(old.wait(in(10000ms)), 0) << old.output();
  EXPECT_EQ(served_by(port()), again.pid());
}

TEST_F(takeover, takeover_without_an_old_process_fails_clearly) {
  auto& next = start_raw(new_server((dir_ / "addr2").string()));
  EXPECT_EQ(next.wait(in(5000ms)), 2) << next.output();
  EXPECT_NE(next.output().find("No such file or directory"), std::string::npos) << next.output();
}

// A listening TCP socket on 127.0.0.1 port 0; returns the fd and sets `port`.
int loopback_listener(int& port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(s, 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return s;
}

bool connect_refused(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool refused = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno == ECONNREFUSED;
  ::close(s);
  return refused;
}

TEST_F(takeover, a_takeover_refused_for_a_bad_socket_name_leaves_the_taker_holding_none_of_the_sockets) {
  // A fake old process answers the takeover with two listening sockets, the second under a
  // name that cannot be valid (a control character). The taker must refuse, and must not
  // keep the first socket it already received: once the old side closes its own copies the
  // ports refuse connections, which they would not if the taker still held one.
  auto path = sock();
  int old_side = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(old_side, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_EQ(::listen(old_side, 1), 0);
  int p1 = 0, p2 = 0;
  int l1 = loopback_listener(p1), l2 = loopback_listener(p2);
  std::thread fake_old([&] {
    int c = ::accept4(old_side, nullptr, nullptr, SOCK_CLOEXEC);
    char hello[256];
    (void)!::recv(c, hello, sizeof hello, 0);
    std::string text = "GRACEFUL-TAKEOVER-FDS 1 2 http:bad\x01name";
    int fds[2] = {l1, l2};
    char control[CMSG_SPACE(sizeof fds)] = {};
    iovec iov{text.data(), text.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    std::memcpy(CMSG_DATA(cm), fds, sizeof fds);
    (void)!::sendmsg(c, &m, MSG_NOSIGNAL);
    char rest[256];
    (void)!::recv(c, rest, sizeof rest, 0);  // EOF: the taker hung up
    ::close(c);
  });
  const int fds_before = count_fds(::getpid());
  auto u = graceful::upgrade::upgrader::create({.takeover_from = path, .systemd_activation = false});
  fake_old.join();
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error(), graceful::upgrade::errc::protocol_mismatch);
  EXPECT_EQ(count_fds(::getpid()), fds_before) << "received fds leaked";
  ::close(l1);
  ::close(l2);
  ::close(old_side);
  EXPECT_TRUE(connect_refused(p1)) << "the taker still holds a live copy of the first socket";
  EXPECT_TRUE(connect_refused(p2)) << "the taker still holds a live copy of the second socket";
}

} // namespace
} // namespace graceful::test
