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

#include "process.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using graceful::deadline;
using graceful::test::child;

bool go_installed() {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "";
  for (std::size_t start = 0; start <= p.size();) {
    auto end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    if (access((p.substr(start, end - start) + "/go").c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

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

// An fd that closes itself.
struct unique_fd {
  int fd = -1;
  explicit unique_fd(int f) : fd(f) {}
  ~unique_fd() {
    if (fd >= 0) close(fd);
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
};

// A listening TCP socket on 127.0.0.1 and a free port, as a supervisor would open it.
int listen_loopback(int& port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0) return -1;
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

// A datagram socket at a fresh path, playing systemd's NOTIFY_SOCKET.
struct notify_socket {
  std::string dir, path;
  unique_fd fd{socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  notify_socket() {
    char tmpl[] = "/tmp/graceful-go-worker-XXXXXX";
    dir = mkdtemp(tmpl) ? tmpl : "";
    path = dir + "/notify";
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof a.sun_path - 1);
    if (bind(fd.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) path.clear();
  }
  ~notify_socket() {
    if (!path.empty()) unlink(path.c_str());
    if (!dir.empty()) rmdir(dir.c_str());
  }
  // The next state line, or "" if none arrives before `d`.
  std::string receive(deadline d) const {
    pollfd p{fd.fd, POLLIN, 0};
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d.remaining()).count();
    if (poll(&p, 1, static_cast<int>(ms)) != 1) return "";
    char buf[256];
    auto n = recv(fd.fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }
};

// Connects to 127.0.0.1:port and sends one HTTP/1.1 request with Connection: close.
// Returns the connected socket (-1 on error); reads time out after 5 s.
int send_get(int port, const std::string& target) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      send(s, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(s);
    return -1;
  }
  return s;
}

// Everything the server sends until it closes (or 5 s of silence); closes `s`.
std::string read_response(int s) {
  unique_fd fd(s);
  std::string resp;
  char buf[4096];
  for (ssize_t n; s >= 0 && (n = recv(s, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<std::size_t>(n));
  return resp;
}

std::string http_get(int port, const std::string& target) { return read_response(send_get(port, target)); }

// Starts go-http -listen-fds with `listener` as fd 3, the way systemd or graceful-run would:
// LISTEN_FDS=1 and LISTEN_PID set to the worker's own pid (the shell execs, keeping its $$).
// `listen_pid` overrides LISTEN_PID to test a mismatch.
std::unique_ptr<child> start_worker(const std::string& go_http, int listener, const std::string& notify,
                                    const std::string& listen_pid = "$$") {
  const std::string fd = std::to_string(listener);
  const std::string move_fd = listener == 3 ? "" : "exec 3<&" + fd + " " + fd + "<&-; ";
  std::vector<std::string> env;
  if (!notify.empty()) env.push_back("NOTIFY_SOCKET=" + notify);
  return std::make_unique<child>(child::spec{
      .argv = {"/bin/sh", "-c", move_fd + "LISTEN_FDS=1 LISTEN_PID=" + listen_pid + " exec \"$0\" -listen-fds", go_http},
      .env_add = env,
      .keep_fds = {listener}});
}

class go_worker : public ::testing::Test {
protected:
  void SetUp() override {
    if (!go_installed()) GTEST_SKIP() << "go not installed (Debian: golang-go)";
    go_http_ = build_go_http();
    ASSERT_FALSE(go_http_.empty());
    listener_ = listen_loopback(port_);
    ASSERT_GE(listener_, 0);
  }
  void TearDown() override {
    if (listener_ >= 0) close(listener_);
  }
  std::string go_http_;
  int listener_ = -1;
  int port_ = 0;
};

TEST_F(go_worker, serves_on_the_socket_passed_by_listen_fds_and_signals_ready_then_stopping) {
  notify_socket notify;
  ASSERT_FALSE(notify.path.empty());
  auto w = start_worker(go_http_, listener_, notify.path);

  EXPECT_EQ(notify.receive(deadline::after(10s)), "READY=1") << w->output();
  const std::string root = http_get(port_, "/");
  EXPECT_EQ(root.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << root;
  EXPECT_NE(root.find("\r\n\r\nHello, World!\n"), std::string::npos) << root;
  // The test process still holds the same listening socket: /pid proves the worker accepted.
  EXPECT_NE(http_get(port_, "/pid").find("\r\n\r\n" + std::to_string(w->pid()) + "\n"), std::string::npos);

  w->signal(SIGTERM);
  EXPECT_EQ(notify.receive(deadline::after(5s)), "STOPPING=1");
  EXPECT_EQ(w->wait(deadline::after(5s)), 0) << w->output();
}

TEST_F(go_worker, refuses_listen_fds_addressed_to_another_pid) {
  auto w = start_worker(go_http_, listener_, "", "1");
  EXPECT_EQ(w->wait(deadline::after(5s)), 1);
  EXPECT_NE(w->output().find("LISTEN_PID"), std::string::npos) << w->output();
}

TEST_F(go_worker, finishes_an_in_flight_request_after_sigterm_and_exits_zero) {
  notify_socket notify;
  auto w = start_worker(go_http_, listener_, notify.path);
  ASSERT_EQ(notify.receive(deadline::after(10s)), "READY=1") << w->output();

  const int slow_conn = send_get(port_, "/slow?ms=600");
  ASSERT_GE(slow_conn, 0);
  // Go accepts in order from one queue: once a later connection is answered, the slow one has
  // been accepted and its request sent, so it is in flight (not idle) when SIGTERM arrives.
  ASSERT_EQ(http_get(port_, "/healthz").rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  w->signal(SIGTERM);
  const std::string slow = read_response(slow_conn);
  EXPECT_EQ(slow.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << slow;
  EXPECT_NE(slow.find("slept 600 ms"), std::string::npos) << slow;
  EXPECT_EQ(w->wait(deadline::after(5s)), 0) << w->output();
}

} // namespace
