// Descriptor exhaustion: graceful-server with a low `ulimit -n` and more clients than fds.
// The accept loop must back off on EMFILE (not spin at 100% CPU, not exit), and serve again
// once descriptors are free.

#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "http_client.hpp"
#include "process.hpp"
#include "processes.hpp"
#include "figure.hpp"
#include "graceful_server.hpp"

using namespace graceful::test;
using namespace std::chrono_literals;
using graceful::deadline;

TEST(fd_exhaustion, accept_loop_backs_off_without_spinning_or_dying_and_serves_again_when_fds_free_up) {
#if defined(__SANITIZE_ADDRESS__)
  // The ASan+UBSan build's vptr check probes memory through a pipe (IsAccessibleMemoryRange):
  // with every descriptor in use the pipe fails and UBSan reports Asio's valid eof category
  // as "not an object of type 'error_category'" ("memory cannot be printed") and stops the
  // server. A suppression file did not silence it, so this one test runs in the plain and
  // TSan builds only.
  GTEST_SKIP() << "UBSan's vptr check needs a free descriptor; runs in the plain and TSan builds";
#endif
  constexpr int fd_limit = 64;
  constexpr int clients = 300;  // far more than the server has descriptors
  raise_nofile(clients + 256);
  // setrlimit in the child before exec: the shell's ulimit, then exec graceful-server.
  server_proc s({"--threads", "1"}, "ulimit -n " + std::to_string(fd_limit));
  ASSERT_TRUE(http_get(s.port, "/")) << s.proc->output();

  // Every client connects and sends a keep-alive request; the kernel completes the TCP
  // handshakes (backlog), the server accepts until EMFILE.
  std::vector<std::unique_ptr<http_conn>> conns;
  for (int i = 0; i < clients; ++i) {
    auto c = std::make_unique<http_conn>(s.port);
    ASSERT_TRUE(c->connected()) << "client " << i << ": errno " << c->errno_value();
    ASSERT_TRUE(c->send(get_request("/")));
    conns.push_back(std::move(c));
  }
  int fds_at_limit = 0;
  ASSERT_TRUE(eventually([&] { return (fds_at_limit = count_fds(s.pid())) >= fd_limit - 2; }, deadline::after(10s)))
      << "the server never reached its fd limit: " << fds_at_limit;

  // CPU time of the server over a 2 s window while it is out of descriptors.
  long hz = ::sysconf(_SC_CLK_TCK);
  long before = cpu_ticks(s.pid());
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2s);
  long after = cpu_ticks(s.pid());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu_pct = 100.0 * (static_cast<double>(after - before) / static_cast<double>(hz)) / secs;
  ASSERT_FALSE(s.proc->exited()) << s.proc->output();
  bool warned = s.proc->output().find("retrying in") != std::string::npos;

  // Free the descriptors: the clients hang up; a new client must be served again.
  int answered_before_close = 0;
  for (auto& c : conns) {
    if (c->read_response(deadline::after(1ms))) ++answered_before_close;
  }
  conns.clear();
  std::optional<http_response> again;
  bool served_again = eventually([&] { return (again = http_get(s.port, "/")) && again->status == 200; },
                                 deadline::after(10s));
  figure("fd exhaustion: ulimit -n " + std::to_string(fd_limit) + ", " + std::to_string(clients) + " clients, " +
         std::to_string(fds_at_limit) + " fds open; server CPU " + std::to_string(static_cast<int>(cpu_pct)) +
         "% over " + std::to_string(secs).substr(0, 4) + " s at the limit; EMFILE logged: " + (warned ? "yes" : "no") +
         "; served again after clients left: " + (served_again ? "yes" : "no"));
  EXPECT_LT(cpu_pct, 50.0) << "the accept loop spins on EMFILE";
  EXPECT_TRUE(warned) << s.proc->output().substr(0, 4000);
  EXPECT_TRUE(served_again) << s.proc->output().substr(0, 4000);
  EXPECT_FALSE(s.proc->exited());
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(deadline::after(10s)), 0);
  (void)answered_before_close;
}
