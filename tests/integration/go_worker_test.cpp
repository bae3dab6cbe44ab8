// bench/peers/go-http in its -listen-fds mode: the Go net/http worker that graceful-run's
// tests drive (issue 7) and the Go peer of the benchmarks. These tests pin what a supervisor
// relies on: it serves exactly the socket passed by the systemd socket-activation protocol,
// says READY=1 / STOPPING=1 on NOTIFY_SOCKET, refuses fds meant for another process, and lets
// an in-flight request finish on SIGTERM. Skipped where Debian's golang-go is not installed.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http_client.hpp"
#include "process.hpp"
#include "sockets.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using graceful::deadline;
using graceful::test::child;

bool go_installed() { return !graceful::test::find_program("go").empty(); }

// The repository, from this file's path (CMake compiles with absolute source paths).
fs::path repo_dir() { return fs::path(GRACEFUL_SOURCE_DIR); }

// Builds go-http with bench/peers/build.sh next to the project's bin dir (cached by mtime, so
// only the first test pays the few seconds a Go build takes). Returns the binary or "".
std::string build_go_http() {
  const fs::path out = fs::path(graceful::test::bin_dir()).parent_path() / "bench-peers";
  child b({.argv = {"/bin/sh", "-c",
                    "exec \"$0\" \"$1\" go-http",
                    (repo_dir() / "bench/peers/build.sh").string(), out.string()}});
  auto rc = b.wait(deadline::after(110s));
  if (rc != 0) {
    ADD_FAILURE() << "bench/peers/build.sh failed: " << b.output();
    return "";
  }
  return (out / "go-http").string();
}

// A datagram socket at a fresh path, playing systemd's NOTIFY_SOCKET.
struct notify_socket {
  std::string dir, path;
  graceful::test::owned_fd fd{socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  notify_socket() {
    char tmpl[] = "/tmp/graceful-go-worker-XXXXXX";
    dir = mkdtemp(tmpl) ? tmpl : "";
    path = dir + "/notify";
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof a.sun_path - 1);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) path.clear();
  }
  ~notify_socket() {
    if (!path.empty()) unlink(path.c_str());
    if (!dir.empty()) rmdir(dir.c_str());
  }
  // The next state line, or "" if none arrives before `d`.
  std::string receive(deadline d) const {
    pollfd p{fd.get(), POLLIN, 0};
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d.remaining()).count();
    if (poll(&p, 1, static_cast<int>(ms)) != 1) return "";
    char buf[256];
    auto n = recv(fd.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }
};

// Starts go-http -listen-fds with `listener` as fd 3, the way systemd or graceful-run would:
// LISTEN_FDS=1 and LISTEN_PID set to the worker's own pid (the shell execs, keeping its $$).
// `listen_pid` overrides LISTEN_PID to test a mismatch.
std::unique_ptr<child> start_worker(const std::string& go_http, int listener, const std::string& notify,
                                    const std::string& listen_pid = "$$") {
  std::vector<std::string> env;
  if (!notify.empty()) env.push_back("NOTIFY_SOCKET=" + notify);
  return std::make_unique<child>(graceful::test::socket_activated({go_http, "-listen-fds"}, listener, "", env, listen_pid));
}

class go_worker : public ::testing::Test {
protected:
  void SetUp() override {
    if (!go_installed()) GTEST_SKIP() << "go not installed (Debian: golang-go)";
    go_http_ = build_go_http();
    ASSERT_FALSE(go_http_.empty());
    listener_ = graceful::test::listen_tcp("127.0.0.1", 64);
    ASSERT_TRUE(listener_.fd);
    port_ = listener_.port;
  }
  std::string go_http_;
  graceful::test::listening_socket listener_;
  int port_ = 0;
};

TEST_F(go_worker, serves_on_the_socket_passed_by_listen_fds_and_signals_ready_then_stopping) {
  notify_socket notify;
  ASSERT_FALSE(notify.path.empty());
  auto w = start_worker(go_http_, listener_.fd.get(), notify.path);

  EXPECT_EQ(notify.receive(deadline::after(10s)), "READY=1") << w->output();
  const std::string root = graceful::test::http_get_text(port_, "/");
  EXPECT_EQ(root.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << root;
  EXPECT_NE(root.find("\r\n\r\nHello, World!\n"), std::string::npos) << root;
  // The test process still holds the same listening socket: /pid proves the worker accepted.
  EXPECT_NE(graceful::test::http_get_text(port_, "/pid").find("\r\n\r\n" + std::to_string(w->pid()) + "\n"), std::string::npos);

  w->signal(SIGTERM);
  EXPECT_EQ(notify.receive(deadline::after(5s)), "STOPPING=1");
  EXPECT_EQ(w->wait(deadline::after(5s)), 0) << w->output();
}

TEST_F(go_worker, refuses_listen_fds_addressed_to_another_pid) {
  auto w = start_worker(go_http_, listener_.fd.get(), "", "1");
  EXPECT_EQ(w->wait(deadline::after(5s)), 1);
  EXPECT_NE(w->output().find("LISTEN_PID"), std::string::npos) << w->output();
}

TEST_F(go_worker, finishes_an_in_flight_request_after_sigterm_and_exits_zero) {
  notify_socket notify;
  auto w = start_worker(go_http_, listener_.fd.get(), notify.path);
  ASSERT_EQ(notify.receive(deadline::after(10s)), "READY=1") << w->output();

  graceful::test::http_conn slow_conn(port_);
  ASSERT_TRUE(slow_conn.connected() &&
              slow_conn.send(graceful::test::get_request("/slow?ms=600", "Connection: close\r\n")));
  // Go accepts in order from one queue: once a later connection is answered, the slow one has
  // been accepted and its request sent, so it is in flight (not idle) when SIGTERM arrives.
  ASSERT_EQ(graceful::test::http_get_text(port_, "/healthz").rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  w->signal(SIGTERM);
  auto slow = slow_conn.read_response(deadline::after(10s));
  ASSERT_TRUE(slow) << "the in-flight request was lost";
  EXPECT_EQ(slow->status, 200);
  EXPECT_NE(slow->body.find("slept 600 ms"), std::string::npos) << slow->body;
  EXPECT_EQ(w->wait(deadline::after(5s)), 0) << w->output();
}

} // namespace
