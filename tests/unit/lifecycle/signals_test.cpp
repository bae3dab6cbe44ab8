// Real signals sent to a child process (tests/programs/lifecycle-probe) drive the lifecycle,
// observed from outside: exit codes, log lines, files written.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <stdlib.h>

#include <gtest/gtest.h>

#include "figure.hpp"
#include "process.hpp"

using graceful::deadline;
using graceful::test::child;
using namespace std::chrono_literals;

namespace {

child probe(std::vector<std::string> args) {
  args.insert(args.begin(), graceful::test::bin("lifecycle-probe"));
  return child({.argv = std::move(args)});
}

// Text positions must be increasing: the lines appeared in this order.
void expect_in_order(const std::string& text, std::initializer_list<std::string> needles) {
  std::size_t pos = 0;
  for (const auto& n : needles) {
    auto at = text.find(n, pos);
    ASSERT_NE(at, std::string::npos) << "missing (in order): " << n << "\n" << text;
    pos = at + n.size();
  }
}

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    char t[] = "/tmp/graceful-diag-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::vector<std::filesystem::path> files() const {
    std::vector<std::filesystem::path> v;
    for (auto& e : std::filesystem::directory_iterator(path)) v.push_back(e.path());
    return v;
  }
};

// `<prefix><10 digits>.<ext>`: the documented diagnostics file name after the pid.
bool is_diag_name(const std::string& name, const std::string& prefix, const std::string& ext) {
  if (name.size() != prefix.size() + 10 + 1 + ext.size() || name.rfind(prefix, 0) != 0) return false;
  for (std::size_t i = prefix.size(); i < prefix.size() + 10; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return name.compare(prefix.size() + 10, std::string::npos, "." + ext) == 0;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

} // namespace

TEST(lifecycle_signals, sigterm_runs_every_phase_and_exits_zero) {
  auto c = probe({"--slow-hook=50"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
  expect_in_order(c.output(), {"stop requested (SIGTERM", "phase draining started", "phase draining finished in",
                               "phase shutting_down started", "phase shutting_down finished in",
                               "phase cleanup started", "probe: cleanup hook ran", "phase cleanup finished in",
                               "exited with code 0", "probe: run returned 0"});
}

TEST(lifecycle_signals, sigint_stops_like_sigterm) {
  auto c = probe({});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGINT);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
  EXPECT_NE(c.output().find("stop requested (SIGINT"), std::string::npos) << c.output();
}

TEST(lifecycle_signals, a_signal_sent_during_startup_is_not_lost) {
  // The probe sleeps between constructing the lifecycle and calling run(): the signal
  // arrives while nobody waits for it yet.
  auto c = probe({"--startup-delay=300"});
  ASSERT_TRUE(c.wait_for_output("probe: constructed", deadline::after(5s))) << c.output();
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
  EXPECT_NE(c.output().find("stop requested (SIGTERM"), std::string::npos) << c.output();
}

TEST(lifecycle_signals, a_stuck_hook_is_cut_at_the_deadline_and_named_in_the_log) {
  auto c = probe({"--stuck-hook=stuck_db_flush", "--slow-hook=10", "--shutdown-timeout=300"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGTERM);
  auto st = c.wait(deadline::after(5s));
  EXPECT_EQ(st, 1) << c.output();
  auto out = c.output();
  bool named = out.find("hooks still running: shutting_down/stuck_db_flush; exiting with code 1") != std::string::npos;
  graceful::test::figure(std::string("stuck shutdown hook (deadline 300 ms): exit ") + (st ? std::to_string(*st) : "none") +
                         ", named in the log: " + (named ? "yes" : "NO"));
  EXPECT_TRUE(named) << out;
  EXPECT_EQ(out.find("shutting_down/slow;"), std::string::npos) << "a finished hook is not listed\n" << out;
  EXPECT_EQ(out.find("probe: run returned"), std::string::npos) << out;
}

TEST(lifecycle_signals, a_second_sigterm_while_stopping_exits_at_once_with_143) {
  auto c = probe({"--stuck-hook=stuck", "--shutdown-timeout=30000"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGTERM);
  ASSERT_TRUE(c.wait_for_output("phase shutting_down started", deadline::after(5s))) << c.output();
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 128 + SIGTERM) << c.output();
  EXPECT_NE(c.output().find("second SIGTERM"), std::string::npos) << c.output();
}

TEST(lifecycle_signals, the_deadline_exit_happens_even_when_stderr_is_a_full_pipe_nobody_reads) {
  // Every log line goes to a pipe nobody reads; a shutdown hook logs until it is full, so the
  // sink blocks in write(2) holding its lock. The deadline exit must not wait for that sink.
  auto c = probe({"--unread-stderr", "--flood-log-hook", "--shutdown-timeout=300"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(20s)), 1) << "the deadline exit code, not a hang\n" << c.output();
}

TEST(lifecycle_signals, a_sigterm_after_the_stop_completed_does_not_change_the_exit_code) {
  // The stop completes (run() returned 0) while a SIGUSR1 dump is still being written; a
  // SIGTERM arriving then is read by the lifecycle thread after the dump.
  auto c = probe({"--stop-during-dump"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGUSR1);
  ASSERT_TRUE(c.wait_for_output("probe: run returned 0", deadline::after(10s))) << c.output();
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(15s)), 0) << c.output();
  EXPECT_NE(c.output().find("SIGTERM (from pid " + std::to_string(::getpid()) + ") after the stop completed: ignored"),
            std::string::npos)
      << c.output();
}

TEST(lifecycle_signals, a_second_sigint_cuts_the_drain_delay_and_exits_with_130) {
  auto c = probe({"--drain-delay=30000", "--shutdown-timeout=30000"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGINT);
  ASSERT_TRUE(c.wait_for_output("phase draining started", deadline::after(5s))) << c.output();
  c.signal(SIGINT);
  EXPECT_EQ(c.wait(deadline::after(5s)), 128 + SIGINT) << c.output();
}

TEST(lifecycle_signals, sighup_without_a_handler_is_logged_as_ignored) {
  auto c = probe({});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGHUP);
  EXPECT_TRUE(c.wait_for_output("SIGHUP", deadline::after(5s))) << c.output();
  EXPECT_NE(c.output().find("ignored: no handler registered"), std::string::npos) << c.output();
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
}

TEST(lifecycle_signals, sigusr1_writes_a_dump_of_every_thread_and_the_sections_while_serving) {
  temp_dir dir;
  auto c = probe({"--diag-dir=" + dir.path.string(), "--park-thread", "--dump-section=in-flight: GET /slow"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGUSR1);
  ASSERT_TRUE(c.wait_for_output("thread dump written to", deadline::after(10s))) << c.output();
  auto files = dir.files();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(is_diag_name(files[0].filename(), "lifecycle-probe-" + std::to_string(c.pid()) + "-threads-", "dump"))
      << files[0];
  auto text = read_file(files[0]);
  // Three threads with stacks: main (in run()), the lifecycle thread (dumping), the parked
  // one. A sanitizer's own thread blocks every signal and is listed as such.
  std::size_t with_stack = 0, headers = 0;
  for (auto at = text.find("--- thread "); at != std::string::npos; at = text.find("--- thread ", at + 1)) {
    ++headers;
    auto eol = text.find('\n', at);
    if (text.compare(eol + 1, 2, "#0") == 0) ++with_stack;
  }
  EXPECT_EQ(with_stack, 3u) << text;
  EXPECT_EQ(text.find("did not answer"), std::string::npos) << text;
  EXPECT_NE(text.find("threads: " + std::to_string(headers) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("graceful_probe_parked_thread_function"), std::string::npos) << text;
  EXPECT_NE(text.find("graceful::lifecycle::lifecycle::run"), std::string::npos) << text;
  EXPECT_NE(text.find("=== probe ===\nin-flight: GET /slow"), std::string::npos) << text;
  // Still serving: a normal stop follows.
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
}

TEST(lifecycle_signals, sigusr2_twice_writes_a_cpu_profile) {
  temp_dir dir;
  auto c = probe({"--diag-dir=" + dir.path.string(), "--busy-thread"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGUSR2);
  ASSERT_TRUE(c.wait_for_output("cpu profile started", deadline::after(5s))) << c.output();
  std::this_thread::sleep_for(300ms);
  c.signal(SIGUSR2);
  ASSERT_TRUE(c.wait_for_output("cpu profile stopped", deadline::after(5s))) << c.output();
  auto files = dir.files();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(is_diag_name(files[0].filename(), "lifecycle-probe-" + std::to_string(c.pid()) + "-cpu-", "pprof"))
      << files[0];
  EXPECT_GT(std::filesystem::file_size(files[0]), 0u);
  // Other signals still work while and after profiling.
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
  // The documented way to read it.
  if (!std::filesystem::exists("/usr/bin/google-pprof")) GTEST_SKIP() << "google-pprof not installed";
  child pprof({.argv = {"/usr/bin/google-pprof", "--text", graceful::test::bin("lifecycle-probe"), files[0].string()}});
  EXPECT_EQ(pprof.wait(deadline::after(30s)), 0) << pprof.output();
  EXPECT_NE(pprof.output().find("Total: "), std::string::npos) << pprof.output();
}

TEST(lifecycle_signals, a_forgotten_profile_stops_by_itself_at_the_limit) {
  temp_dir dir;
  auto c = probe({"--diag-dir=" + dir.path.string(), "--profile-limit=1"});
  ASSERT_TRUE(c.wait_for_output("probe: running", deadline::after(5s))) << c.output();
  c.signal(SIGUSR2);
  ASSERT_TRUE(c.wait_for_output("cpu profile started", deadline::after(5s))) << c.output();
  EXPECT_TRUE(c.wait_for_output("cpu profile stopped", deadline::after(5s))) << c.output();
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(deadline::after(5s)), 0) << c.output();
}
