// Signals arriving in bursts: graceful-server must neither crash nor end up in an undefined
// state. Standard signals coalesce in the kernel, so "defined" means: after a burst of
// diagnostic signals it still serves; after a burst containing SIGTERM it exits with the
// documented code (0 for one stop, 143 when a second SIGTERM cut it), leaving no process.

#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http_client.hpp"
#include "process.hpp"
#include "processes.hpp"
#include "figure.hpp"
#include "graceful_server.hpp"
#include "temp_dir.hpp"

using namespace graceful::test;
using namespace std::chrono_literals;
using graceful::deadline;
namespace fs = std::filesystem;

TEST(signal_burst, a_hundred_sigusr1_and_sigusr2_leave_the_server_serving) {
  temp_dir diag("burst");
  server_proc s({"--diag-dir", diag.path().string()});
  for (int i = 0; i < 100; ++i) s.proc->signal(i % 2 ? SIGUSR2 : SIGUSR1);
  // The signal thread works through what arrived (a thread dump takes a few seconds to
  // symbolize); meanwhile, and after, requests are served.
  bool dumped = eventually([&] { return diag.files() >= 1; }, deadline::after(20s));
  int ok = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = http_get(s.port, "/");
    if (r && r->status == 200) ++ok;
  }
  bool alive_now = !s.proc->exited();
  figure("signal burst: 100 SIGUSR1/SIGUSR2 -> alive " + std::string(alive_now ? "yes" : "no") + ", " +
         std::to_string(ok) + "/20 requests 200 after, " + std::to_string(diag.files()) +
         " diagnostic files written (signals coalesce)");
  EXPECT_TRUE(alive_now) << s.proc->output().substr(0, 4000);
  EXPECT_EQ(ok, 20);
  EXPECT_TRUE(dumped) << s.proc->output().substr(0, 4000);
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(deadline::after(15s)), 0) << s.proc->output().substr(0, 4000);
}

TEST(signal_burst, a_hundred_mixed_signals_with_sigterm_end_in_a_documented_exit_with_at_most_one_serving_successor) {
  become_subreaper();  // an upgrade a SIGHUP may start must not outlive the test
  temp_dir diag("burst");
  server_proc s({"--diag-dir", diag.path().string(), "--shutdown-timeout", "5s"});
  const int sigs[] = {SIGHUP, SIGUSR1, SIGTERM, SIGUSR2};
  for (int i = 0; i < 100; ++i) s.proc->signal(sigs[i % 4]);
  auto st = s.proc->wait(deadline::after(20s));
  ASSERT_TRUE(st) << "did not exit: " << s.proc->output().substr(0, 4000);
  // Two defined outcomes: a SIGHUP that came first upgraded, and the successor (orphaned to
  // us) now serves alone; or the stop came first and nothing is left.
  reap_exited();
  auto left = children_of(::getpid());
  std::string outcome = "none left";
  if (!left.empty()) {
    EXPECT_EQ(left.size(), 1u) << "more than one process left";
    for (std::size_t i = 1; i < left.size(); ++i) kill_and_reap(left[i]);
    pid_t successor = left[0];
    auto r = http_get(s.port, "/");
    outcome = std::string("an upgrade completed first; the successor serves: ") + (r && r->status == 200 ? "yes" : "NO");
    EXPECT_TRUE(r && r->status == 200) << s.proc->output().substr(0, 6000);
    ::kill(successor, SIGTERM);
    EXPECT_TRUE(wait_gone(successor, deadline::after(15s)));
  }
  figure("signal burst: 100 SIGHUP/SIGUSR1/SIGTERM/SIGUSR2 -> exit " + std::to_string(*st) + "; " + outcome);
  EXPECT_TRUE(*st == 0 || *st == 143) << "exit " << *st << "\n" << s.proc->output().substr(0, 4000);
  EXPECT_TRUE(fetch(s.port).empty()) << "port still served after exit";
}
