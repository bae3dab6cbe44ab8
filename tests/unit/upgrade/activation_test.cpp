// Start-up paths other than a graceful parent: systemd socket activation (LISTEN_*), and
// forged or stale variables, which must be rejected with a clear message, not adopted.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "upgrade_test_server.hpp"

namespace graceful::test {
namespace {

class activation : public server_test {
protected:
  // Runs the server through bash so that LISTEN_PID=$$ is the server's own pid after exec,
  // with `redirs` applied (e.g. "3<&7 7<&-") and `vars` exported.
  child& start_via_bash(const std::string& vars, const std::string& redirs, std::vector<std::string> args,
                        std::vector<int> keep = {}) {
    std::vector<std::string> argv{"/bin/bash", "-c", "export " + vars + "; exec \"$0\" \"$@\" " + redirs,
                                  server_path().string(), "--addr-file", addr_file()};
    argv.insert(argv.end(), args.begin(), args.end());
    return start_raw(argv, {}, keep);
  }
  // A listening socket on 127.0.0.1, as systemd would have made it.
  int listening_socket(int& port) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(s, 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return high(s);
  }
  // Moves `fd` above the numbers the redirections target ("3<&3 3<&-" would close it).
  static int high(int fd) {
    int h = ::fcntl(fd, F_DUPFD_CLOEXEC, 50);
    ::close(fd);
    return h;
  }
};

TEST_F(activation, adopts_a_systemd_socket_by_its_fd_name) {
  int p = 0;
  int s = listening_socket(p);
  auto fd = std::to_string(s);
  auto& srv = start_via_bash("LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http", "3<&" + fd + " " + fd + "<&-",
                             {"--listen", "http=127.0.0.1:" + std::to_string(p)}, {s});
  ::close(s);
  ASSERT_TRUE(srv.wait_for_output("ready pid=", in(5000ms))) << srv.output();
  EXPECT_NE(srv.output().find("from=systemd"), std::string::npos) << srv.output();
  EXPECT_EQ(served_by(p), srv.pid()) << "serves on the socket the test (as systemd) made";
}

TEST_F(activation, a_systemd_activated_server_upgrades_and_its_child_does_not_see_listen_variables) {
  int p = 0;
  int s = listening_socket(p);
  auto fd = std::to_string(s);
  auto& srv = start_via_bash("LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http", "3<&" + fd + " " + fd + "<&-",
                             {"--listen", "http=127.0.0.1:" + std::to_string(p), "--pid-file", pid_file()}, {s});
  ::close(s);
  ASSERT_TRUE(srv.wait_for_output("ready pid=", in(5000ms))) << srv.output();
  srv.signal(SIGHUP);
  ASSERT_EQ(srv.wait(in(10000ms)), 0) << srv.output();
  pid_t b = served_by(p);
  ASSERT_NE(b, 0);
  ASSERT_NE(b, srv.pid());
  // Entries are NUL-separated; a leading NUL makes "\0LISTEN_FDS=" match only whole names
  // (GRACEFUL_LISTEN_FDS= is expected).
  auto env = std::string(1, '\0') + read_file("/proc/" + std::to_string(b) + "/environ");
  EXPECT_EQ(env.find(std::string("\0LISTEN_FDS=", 12)), std::string::npos);
  EXPECT_EQ(env.find(std::string("\0LISTEN_PID=", 12)), std::string::npos);
  EXPECT_NE(env.find("GRACEFUL_UPGRADE_PROTOCOL=1"), std::string::npos) << "got the sockets from its parent";
}

TEST_F(activation, forged_listen_fds_pointing_at_a_file_are_rejected) {
  auto& srv = start_via_bash("LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http", "3</etc/hostname",
                             {"--listen", "http=127.0.0.1:0"});
  EXPECT_EQ(srv.wait(in(5000ms)), 2) << srv.output();
  EXPECT_NE(srv.output().find("inherited fd 3 ('http', from systemd) is a regular file, not a socket"),
            std::string::npos) << srv.output();
}

TEST_F(activation, forged_listen_fds_pointing_at_a_closed_fd_are_rejected) {
  auto& srv = start_via_bash("LISTEN_PID=$$ LISTEN_FDS=2", "", {"--listen", "http=127.0.0.1:0"});
  EXPECT_EQ(srv.wait(in(5000ms)), 2) << srv.output();
  EXPECT_NE(srv.output().find("not a socket"), std::string::npos) << srv.output();
}

TEST_F(activation, listen_variables_for_another_pid_are_a_configuration_error_naming_the_fds) {
  // Nobody hands LISTEN_* on legitimately (each reader unsets them): a wrapper forked in
  // between, or they are forged. Binding a fresh socket instead would serve a port nobody
  // activated.
  auto& srv = start_via_bash("LISTEN_PID=1 LISTEN_FDS=1", "3</etc/hostname", {"--listen", "http=127.0.0.1:0"});
  EXPECT_EQ(srv.wait(in(5000ms)), 2) << srv.output();
  EXPECT_NE(srv.output().find("LISTEN_FDS=1 (fds 3 and up) is addressed to LISTEN_PID=1, but this is pid " +
                              std::to_string(srv.pid())),
            std::string::npos)
      << srv.output();
}

TEST_F(activation, an_inherited_socket_on_another_port_than_asked_is_a_clear_error) {
  int p = 0;
  int s = listening_socket(p);
  auto fd = std::to_string(s);
  int other = p == 65535 ? 1 : p + 1;
  auto& srv = start_via_bash("LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http", "3<&" + fd + " " + fd + "<&-",
                             {"--listen", "http=127.0.0.1:" + std::to_string(other)}, {s});
  ::close(s);
  EXPECT_EQ(srv.wait(in(5000ms)), 2) << srv.output();
  EXPECT_NE(srv.output().find("is bound to 127.0.0.1:" + std::to_string(p)), std::string::npos) << srv.output();
}

TEST_F(activation, forged_hand_over_variables_pointing_at_a_file_are_rejected) {
  auto vars = "GRACEFUL_UPGRADE_PROTOCOL=1 GRACEFUL_PARENT_PID=" + std::to_string(::getpid()) +
              " GRACEFUL_LISTEN_FDS=1 GRACEFUL_LISTEN_FDNAMES=http GRACEFUL_READY_FD=4";
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  sv[1] = high(sv[1]);
  auto r = std::to_string(sv[1]);
  auto& srv = start_via_bash(vars, "3</etc/hostname 4<&" + r + " " + r + "<&-", {"--listen", "http=127.0.0.1:0"},
                             {sv[1]});
  ::close(sv[1]);
  EXPECT_EQ(srv.wait(in(5000ms)), 2) << srv.output();
  EXPECT_NE(srv.output().find("is a regular file, not a socket"), std::string::npos) << srv.output();
  ::close(sv[0]);
}

TEST_F(activation, a_parent_speaking_another_protocol_version_is_refused) {
  auto vars = "GRACEFUL_UPGRADE_PROTOCOL=2 GRACEFUL_PARENT_PID=" + std::to_string(::getpid()) +
              " GRACEFUL_LISTEN_FDS=0 GRACEFUL_LISTEN_FDNAMES= GRACEFUL_READY_FD=3";
  auto& srv = start_via_bash(vars, "", {"--listen", "http=127.0.0.1:0"});
  EXPECT_EQ(srv.wait(in(5000ms)), 2) << srv.output();
  EXPECT_NE(srv.output().find("speaks hand-over protocol 2"), std::string::npos) << srv.output();
}

TEST_F(activation, hand_over_variables_meant_for_another_process_are_ignored) {
  auto& srv = start_via_bash("GRACEFUL_UPGRADE_PROTOCOL=1 GRACEFUL_PARENT_PID=1 GRACEFUL_LISTEN_FDS=1 "
                             "GRACEFUL_LISTEN_FDNAMES=http GRACEFUL_READY_FD=4",
                             "3</etc/hostname", {"--listen", "http=127.0.0.1:0"});
  ASSERT_TRUE(srv.wait_for_output("ready pid=", in(5000ms))) << srv.output();
  EXPECT_NE(srv.output().find("from=created"), std::string::npos) << srv.output();
}

} // namespace
} // namespace graceful::test
