// The upgrader's state machine in-process, through its spawn seam: what it asks the OS to
// run, and how it answers each way a new process can behave.
#include <graceful/upgrade/upgrader.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>

#include <gtest/gtest.h>
#include <unistd.h>

#include "process.hpp"
#include "processes.hpp"

namespace up = graceful::upgrade;
using namespace std::chrono_literals;

namespace {

// Runs `script` with /bin/sh instead of the new binary, keeping the fds the upgrader placed
// (listeners at 3.., the ready socket after them).
up::spawn_function shell(std::string script, std::atomic<pid_t>* spawned = nullptr) {
  return [script, spawned](const up::spawn_request& r) -> graceful::result<pid_t> {
    up::spawn_request sh = r;
    sh.executable = "/bin/sh";
    sh.argv = {"sh", "-c", script};
    auto pid = up::posix_spawn_process(sh);
    if (pid && spawned) *spawned = pid.value();
    return pid;
  };
}

std::unique_ptr<up::upgrader> make(up::options o) {
  auto u = up::upgrader::create(std::move(o));
  EXPECT_TRUE(u) << u.error().message();
  auto fd = u.value()->listen("http", "127.0.0.1:0");
  EXPECT_TRUE(fd);
  return std::move(u.value());
}

} // namespace

TEST(upgrader, refuses_to_upgrade_before_ready) {
  auto u = make({.spawn = shell("exit 0")});
  EXPECT_EQ(u->current_state(), up::state::starting);
  auto r = u->upgrade();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), up::errc::not_ready);
}

TEST(upgrader, asks_to_run_the_absolute_start_path_with_the_same_argv_and_the_named_sockets) {
  up::spawn_request seen;
  int calls = 0;
  up::options o;
  o.argv = {"./some-server", "--flag", "value"};
  o.spawn = [&](const up::spawn_request& r) -> graceful::result<pid_t> {
    seen = r;
    ++calls;
    return std::make_error_code(std::errc::executable_format_error);
  };
  auto u = make(o);
  ASSERT_TRUE(u->listen("admin", "127.0.0.1:0"));
  ASSERT_TRUE(u->ready());
  auto r = u->upgrade();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::executable_format_error);
  EXPECT_EQ(seen.executable, std::filesystem::current_path() / "some-server");
  EXPECT_EQ(seen.argv, o.argv);
  ASSERT_EQ(seen.fds.size(), 3u) << "two listeners and the ready socket";
  auto has = [&](const std::string& kv) { return std::find(seen.env.begin(), seen.env.end(), kv) != seen.env.end(); };
  EXPECT_TRUE(has("GRACEFUL_UPGRADE_PROTOCOL=1"));
  EXPECT_TRUE(has("GRACEFUL_LISTEN_FDS=2"));
  EXPECT_TRUE(has("GRACEFUL_LISTEN_FDNAMES=admin:http"));
  EXPECT_TRUE(has("GRACEFUL_READY_FD=5"));
  EXPECT_TRUE(has("GRACEFUL_PARENT_PID=" + std::to_string(::getpid())));
  // A failed start leaves the process ready to try again.
  EXPECT_EQ(u->current_state(), up::state::ready);
  EXPECT_FALSE(u->upgrade());
  EXPECT_EQ(calls, 2);
}

TEST(upgrader, resolves_a_bare_program_name_through_path) {
  std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", ("/nonexistent:" + graceful::test::bin_dir()).c_str(), 1);
  auto u = up::upgrader::create({.argv = {"upgrade-test-server"}});
  ::setenv("PATH", old_path.c_str(), 1);
  ASSERT_TRUE(u);
  EXPECT_EQ(u.value()->executable(), std::filesystem::path(graceful::test::bin("upgrade-test-server")).lexically_normal());
}

TEST(upgrader, rejects_a_zero_upgrade_timeout) {
  auto u = up::upgrader::create({.upgrade_timeout = 0ms});
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error(), std::errc::invalid_argument);
}

TEST(upgrader, validate_names_the_first_bad_field) {
  EXPECT_FALSE(up::validate({}));
  auto bad = up::validate({.upgrade_timeout = 0ms});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->field, "upgrade_timeout");
  EXPECT_EQ(bad->message, "upgrade::options::upgrade_timeout must be positive");
  bad = up::validate({.child_stop_timeout = -1ms});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->field, "child_stop_timeout");
}

TEST(upgrader, rejects_listener_names_that_cannot_travel_in_the_environment) {
  auto u = up::upgrader::create({});
  ASSERT_TRUE(u);
  EXPECT_FALSE(u.value()->listen("a:b", "127.0.0.1:0"));
  EXPECT_FALSE(u.value()->listen("", "127.0.0.1:0"));
}

TEST(upgrader, hands_over_when_the_new_process_sends_the_ready_line) {
  std::atomic<pid_t> spawned{0};
  auto u = make({.spawn = shell("echo \"GRACEFUL-READY 1 $$\" >&4; exec sleep 5", &spawned)});
  ASSERT_TRUE(u->ready());
  pid_t told = 0;
  u->on_handed_over([&](pid_t p) { told = p; });
  auto r = u->upgrade();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r.value(), spawned.load());
  EXPECT_EQ(told, spawned.load());
  EXPECT_EQ(u->current_state(), up::state::handed_over);
  auto again = u->upgrade();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), up::errc::handed_over);
  graceful::test::kill_and_reap(spawned);
}

TEST(upgrader, a_ready_line_of_another_protocol_version_fails_the_upgrade_and_kills_the_child) {
  std::atomic<pid_t> spawned{0};
  auto u = make({.spawn = shell("echo \"GRACEFUL-READY 2 $$\" >&4; exec sleep 5", &spawned)});
  ASSERT_TRUE(u->ready());
  auto r = u->upgrade();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), up::errc::protocol_mismatch);
  EXPECT_EQ(graceful::test::process_state(spawned), 0) << "killed and reaped";
  EXPECT_EQ(u->current_state(), up::state::ready);
}

TEST(upgrader, a_child_that_exits_first_is_reported_as_child_exited) {
  std::atomic<pid_t> spawned{0};
  auto u = make({.spawn = shell("exit 7", &spawned)});
  ASSERT_TRUE(u->ready());
  auto r = u->upgrade();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), up::errc::child_exited);
  EXPECT_EQ(graceful::test::process_state(spawned), 0) << "reaped, not a zombie";
}

TEST(upgrader, a_child_that_is_not_ready_in_time_is_killed) {
  std::atomic<pid_t> spawned{0};
  auto u = make({.upgrade_timeout = 200ms, .spawn = shell("exec sleep 5", &spawned)});
  ASSERT_TRUE(u->ready());
  auto r = u->upgrade();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), up::errc::child_not_ready);
  EXPECT_EQ(graceful::test::process_state(spawned), 0);
}

TEST(upgrader, refuses_a_second_upgrade_while_one_runs_and_cancel_stops_the_child) {
  std::atomic<pid_t> spawned{0};
  auto u = make({.child_stop_timeout = 2s, .spawn = shell("exec sleep 5", &spawned)});
  ASSERT_TRUE(u->ready());
  std::promise<graceful::result<pid_t>> outcome;
  ASSERT_TRUE(u->start_upgrade([&](graceful::result<pid_t> r) { outcome.set_value(r); }));
  ASSERT_TRUE(graceful::test::eventually([&] { return spawned.load() != 0; }, graceful::deadline::after(3s)));
  auto second = u->start_upgrade();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), up::errc::upgrade_in_progress);
  auto third = u->upgrade();
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error(), up::errc::upgrade_in_progress);
  u->cancel();
  auto r = outcome.get_future().get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), up::errc::upgrade_cancelled);
  EXPECT_EQ(graceful::test::process_state(spawned), 0) << "the starting child was stopped and reaped";
  EXPECT_EQ(u->current_state(), up::state::stopping);
  auto later = u->upgrade();
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error(), up::errc::upgrade_cancelled);
}

TEST(upgrader, a_child_that_wrote_the_pid_file_and_died_before_ready_leaves_the_file_naming_this_process) {
  char tmpl[] = "/tmp/graceful-upgrader-pid-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string pid_file = dir + "/server.pid";
  // The new process writes the pid file just before its ready line; this one dies in between.
  auto u = make({.pid_file = pid_file, .spawn = shell("echo $$ > " + pid_file + "; exit 3")});
  ASSERT_TRUE(u->ready());
  ASSERT_EQ(std::atoi(graceful::test::read_file(pid_file).c_str()), ::getpid());
  auto r = u->upgrade();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), up::errc::child_exited);
  EXPECT_EQ(std::atoi(graceful::test::read_file(pid_file).c_str()), ::getpid()) << "names the dead child";
  std::remove(pid_file.c_str());
  ::rmdir(dir.c_str());
}
