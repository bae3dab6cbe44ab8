// The stop sequence driven from code, in-process: phases, hooks, readiness, the stop signal.
#include <graceful/lifecycle/lifecycle.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "figure.hpp"
#include "process.hpp"
#include <poll.h>
#include <pthread.h>
#include <csignal>
#include <unistd.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace gl = graceful::lifecycle;
using namespace std::chrono_literals;

namespace {

// A logger whose lines the test can read once the hooks are joined (after run()).
struct captured_log {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  captured_log() { logger->set_level(spdlog::level::debug); }
  std::string text() {
    logger->flush();
    return out.str();
  }
};

gl::options quiet(captured_log& log) {
  gl::options o;
  o.handle_signals = false;
  o.logger = log.logger;
  return o;
}

bool fd_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

} // namespace

TEST(lifecycle, phases_run_in_order_and_run_returns_the_exit_code) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  std::mutex m;
  std::vector<std::string> seen;
  auto note = [&](std::string s) { std::lock_guard lk(m); seen.push_back(std::move(s)); };
  auto r1 = lc.on_phase("observer", [&](gl::phase p) { note(std::string("phase:") + std::string(gl::to_string(p))); });
  auto r2 = lc.on_drain("deregister", [&](graceful::deadline) { note("drain hook"); });
  auto r3 = lc.on_shutdown("server", [&](graceful::deadline) { note("shutdown hook"); });
  auto r4 = lc.on_cleanup("db", [&](graceful::deadline) { note("cleanup hook"); });
  lc.request_stop("test", {.exit_code = 7});
  EXPECT_EQ(lc.run(), 7);
  EXPECT_EQ(seen, (std::vector<std::string>{"phase:draining", "drain hook", "phase:shutting_down", "shutdown hook",
                                            "phase:cleanup", "cleanup hook", "phase:exited"}));
  EXPECT_EQ(lc.current_phase(), gl::phase::exited);
  auto text = log.text();
  for (auto p : {"phase draining finished in", "phase shutting_down finished in", "phase cleanup finished in",
                 "exited with code 7"})
    EXPECT_NE(text.find(p), std::string::npos) << p << " missing from:\n" << text;
}

TEST(lifecycle, hooks_of_one_phase_run_concurrently) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  // Each hook waits for the other to have started: only concurrent hooks both succeed.
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  std::atomic<int> met{0};
  auto meet = [&](graceful::deadline) {
    std::unique_lock lk(m);
    ++arrived;
    cv.notify_all();
    if (cv.wait_for(lk, 3s, [&] { return arrived == 2; })) ++met;
  };
  auto a = lc.on_shutdown("a", meet);
  auto b = lc.on_shutdown("b", meet);
  lc.request_stop("test");
  EXPECT_EQ(lc.run(), 0);
  EXPECT_EQ(met.load(), 2);
}

TEST(lifecycle, cleanup_starts_only_after_every_shutdown_hook_returned) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  std::atomic<int> shutdown_done{0};
  std::atomic<int> seen_at_cleanup{-1};
  auto slow = lc.on_shutdown("slow", [&](graceful::deadline) {
    std::this_thread::sleep_for(100ms);
    ++shutdown_done;
  });
  auto fast = lc.on_shutdown("fast", [&](graceful::deadline) { ++shutdown_done; });
  auto clean = lc.on_cleanup("db", [&](graceful::deadline) { seen_at_cleanup = shutdown_done.load(); });
  lc.request_stop("test");
  lc.run();
  EXPECT_EQ(seen_at_cleanup.load(), 2);
}

TEST(lifecycle, a_hook_that_throws_is_logged_and_the_others_still_run) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  std::atomic<bool> other_ran{false}, cleanup_ran{false};
  auto bad = lc.on_shutdown("exploding", [](graceful::deadline) { throw std::runtime_error("boom"); });
  auto good = lc.on_shutdown("good", [&](graceful::deadline) { other_ran = true; });
  auto c = lc.on_cleanup("c", [&](graceful::deadline) { cleanup_ran = true; });
  lc.request_stop("test");
  EXPECT_EQ(lc.run(), 0);
  EXPECT_TRUE(other_ran);
  EXPECT_TRUE(cleanup_ran);
  EXPECT_NE(log.text().find("hook shutting_down/exploding threw"), std::string::npos) << log.text();
  EXPECT_NE(log.text().find("boom"), std::string::npos);
}

TEST(lifecycle, readiness_is_false_and_the_stop_is_visible_as_soon_as_it_is_requested) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  EXPECT_TRUE(lc.ready());
  EXPECT_FALSE(lc.stop_requested());
  EXPECT_FALSE(lc.stop_token().stop_requested());
  EXPECT_FALSE(fd_readable(lc.stop_fd()));
  EXPECT_FALSE(lc.wait_for_stop(graceful::deadline::after(10ms)));
  lc.request_stop("test");
  EXPECT_FALSE(lc.ready());
  EXPECT_TRUE(lc.stop_requested());
  EXPECT_TRUE(lc.stop_token().stop_requested());
  EXPECT_TRUE(fd_readable(lc.stop_fd()));
  EXPECT_TRUE(fd_readable(lc.stop_fd())) << "the stop fd stays readable";
  EXPECT_TRUE(lc.wait_for_stop(graceful::deadline::after(10ms)));
  EXPECT_NE(lc.current_phase(), gl::phase::running);
  lc.run();
}

TEST(lifecycle, wait_for_stop_wakes_when_another_thread_requests_the_stop) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  std::jthread t([&] {
    std::this_thread::sleep_for(20ms);
    lc.request_stop("from another thread");
  });
  EXPECT_TRUE(lc.wait_for_stop(graceful::deadline::after(5s)));
  t.join();
  lc.run();
}

TEST(lifecycle, a_second_request_stop_only_logs) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  lc.request_stop("first", {.exit_code = 3});
  lc.request_stop("second", {.exit_code = 4});
  EXPECT_EQ(lc.run(), 3);
  EXPECT_NE(log.text().find("ignoring stop request (second)"), std::string::npos) << log.text();
}

TEST(lifecycle, drain_hooks_run_during_the_drain_delay_and_shutdown_waits_for_it) {
  captured_log log;
  auto o = quiet(log);
  // Generous (scaled under sanitizers): a correct lifecycle calls the drain hooks at once,
  // so they run well inside it however slow the machine; a late one runs after it.
  const auto delay = graceful::test::scaled(1s);
  o.drain_delay = delay;
  gl::lifecycle lc(o);
  std::atomic<bool> ready_during_drain{true};
  graceful::deadline::clock::time_point drained{}, shutdown_at{};
  auto d = lc.on_drain("discovery", [&](graceful::deadline) {
    ready_during_drain = lc.ready();
    drained = graceful::deadline::clock::now();
  });
  auto s = lc.on_shutdown("server", [&](graceful::deadline) { shutdown_at = graceful::deadline::clock::now(); });
  auto t0 = graceful::deadline::clock::now();
  lc.request_stop("test");
  lc.run();
  EXPECT_FALSE(ready_during_drain);
  EXPECT_LT(drained, shutdown_at) << "drain hooks run before shutdown";
  EXPECT_LT(drained - t0, delay) << "drain hooks start with the delay, not after it";
  EXPECT_GE(shutdown_at - t0, delay) << "shutdown starts only after the drain delay";
}

TEST(lifecycle, request_stop_can_override_the_drain_delay) {
  captured_log log;
  auto o = quiet(log);
  o.drain_delay = 10s;
  gl::lifecycle lc(o);
  lc.request_stop("upgrade", {.drain_delay = 0ms});
  auto t0 = graceful::deadline::clock::now();
  lc.run();
  EXPECT_LT(graceful::deadline::clock::now() - t0, 5s);
}

TEST(lifecycle, hooks_receive_the_overall_stop_deadline) {
  captured_log log;
  auto o = quiet(log);
  o.drain_delay = 20ms;
  o.shutdown_timeout = 2s;
  gl::lifecycle lc(o);
  graceful::deadline got_drain, got_cleanup;
  auto a = lc.on_drain("a", [&](graceful::deadline d) { got_drain = d; });
  auto c = lc.on_cleanup("c", [&](graceful::deadline d) { got_cleanup = d; });
  auto before = graceful::deadline::clock::now();
  lc.request_stop("test");
  auto after = graceful::deadline::clock::now();
  lc.run();
  EXPECT_EQ(got_drain, got_cleanup);
  EXPECT_GE(got_drain.when(), before + 2020ms);
  EXPECT_LE(got_drain.when(), after + 2020ms);
}

TEST(lifecycle, a_reset_registration_is_not_called) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  std::atomic<bool> called{false};
  auto r = lc.on_shutdown("gone", [&](graceful::deadline) { called = true; });
  EXPECT_TRUE(static_cast<bool>(r));
  r.reset();
  EXPECT_FALSE(static_cast<bool>(r));
  lc.request_stop("test");
  lc.run();
  EXPECT_FALSE(called);
}

TEST(lifecycle, a_registration_may_outlive_its_lifecycle) {
  gl::registration r;
  std::atomic<int> calls{0};
  {
    captured_log log;
    gl::lifecycle lc(quiet(log));
    r = lc.on_cleanup("late", [&](graceful::deadline) { ++calls; });
  }
  // The lifecycle is gone (never run): the hook was not called, and the registration is
  // still held until reset, which must not touch the destroyed lifecycle (ASan checks that).
  EXPECT_TRUE(static_cast<bool>(r));
  r.reset();
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(calls.load(), 0);
  // A new lifecycle starts with no trace of it: its cleanup phase calls nothing.
  captured_log log;
  gl::lifecycle again(quiet(log));
  again.request_stop("test");
  EXPECT_EQ(again.run(), 0);
  EXPECT_EQ(calls.load(), 0);
}

TEST(lifecycle, only_one_lifecycle_may_exist) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  EXPECT_THROW(gl::lifecycle second(quiet(log)), std::logic_error);
}

TEST(lifecycle, a_new_lifecycle_may_be_created_after_the_previous_one_is_gone) {
  captured_log log;
  { gl::lifecycle a(quiet(log)); }
  EXPECT_NO_THROW(gl::lifecycle b(quiet(log)));
}

TEST(lifecycle, validate_names_the_first_bad_field) {
  EXPECT_FALSE(gl::validate({}));
  auto bad = gl::validate({.shutdown_timeout = 0ms});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->field, "shutdown_timeout");
  EXPECT_EQ(bad->message, "lifecycle::options::shutdown_timeout must be positive");
  bad = gl::validate({.drain_delay = -1ms});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->field, "drain_delay");
  bad = gl::validate({.profile_limit = 0s});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->field, "profile_limit");
}

TEST(lifecycle, bad_options_are_rejected) {
  captured_log log;
  auto o = quiet(log);
  o.shutdown_timeout = 0ms;
  try {
    gl::lifecycle bad(o);
    ADD_FAILURE() << "constructed with shutdown_timeout 0";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "lifecycle::options::shutdown_timeout must be positive");
  }
  o = quiet(log);
  o.drain_delay = -1ms;
  EXPECT_THROW(gl::lifecycle bad(o), std::invalid_argument);
}

TEST(lifecycle, on_signal_accepts_only_sighup_and_the_user_signals) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  EXPECT_THROW((void)lc.on_signal(SIGTERM, "x", [] {}), std::invalid_argument);
  EXPECT_THROW((void)lc.on_signal(SIGINT, "x", [] {}), std::invalid_argument);
  EXPECT_NO_THROW((void)lc.on_signal(SIGHUP, "x", [] {}));
}

TEST(lifecycle, config_resolves_program_name_and_diag_dir) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  EXPECT_EQ(lc.config().program_name, "unit_lifecycle");
  EXPECT_FALSE(lc.config().diag_dir.empty());
}

TEST(lifecycle, dump_threads_from_code_writes_the_documented_file_with_sections) {
  captured_log log;
  auto o = quiet(log);
  auto dir = std::filesystem::temp_directory_path() / ("graceful-lc-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  o.diag_dir = dir;
  gl::lifecycle lc(o);
  auto s = lc.add_dump_section("inflight", [] { return std::string("GET /slow 1.2s"); });
  auto p = lc.dump_threads();
  ASSERT_TRUE(p) << p.error().message();
  auto name = p.value().filename().string();
  EXPECT_TRUE(name.starts_with("unit_lifecycle-" + std::to_string(::getpid()) + "-threads-")) << name;
  EXPECT_TRUE(name.ends_with(".dump")) << name;
  std::ifstream f(p.value());
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_NE(ss.str().find("=== inflight ===\nGET /slow 1.2s"), std::string::npos) << ss.str();
  std::filesystem::remove_all(dir);
}

namespace {
sigset_t current_mask() {
  sigset_t s;
  pthread_sigmask(SIG_BLOCK, nullptr, &s);
  return s;
}
} // namespace

TEST(lifecycle, blocks_exactly_the_handled_signals_in_later_threads_and_restores_the_mask) {
  captured_log log;
  gl::options o;
  o.logger = log.logger;
  sigset_t before = current_mask();
  ASSERT_FALSE(sigismember(&before, SIGTERM));
  {
    gl::lifecycle lc(o);
    sigset_t in_thread{};
    std::thread([&] { in_thread = current_mask(); }).join();
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) EXPECT_TRUE(sigismember(&in_thread, s)) << s;
    // The profiler's SIGPROF and everything else stay deliverable.
    for (int s : {SIGPROF, SIGALRM, SIGCHLD, SIGPIPE, SIGQUIT}) EXPECT_FALSE(sigismember(&in_thread, s)) << s;
  }
  sigset_t after = current_mask();
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) EXPECT_FALSE(sigismember(&after, s)) << s;
}

TEST(lifecycle, a_sigterm_to_the_process_starts_the_stop) {
  captured_log log;
  gl::options o;
  o.logger = log.logger;
  gl::lifecycle lc(o);
  ::kill(::getpid(), SIGTERM);  // process-directed: only the signalfd can take it
  EXPECT_TRUE(lc.wait_for_stop(graceful::deadline::after(5s)));
  EXPECT_EQ(lc.run(), 0);
  EXPECT_NE(log.text().find("stop requested (SIGTERM from pid " + std::to_string(::getpid())), std::string::npos)
      << log.text();
}

TEST(lifecycle, a_sigterm_starts_the_stop_while_the_lifecycle_thread_is_busy_writing_a_dump) {
  // run() reads SIGTERM/SIGINT itself: a stop does not wait behind a slow SIGUSR1 dump section
  // (nor for the lifecycle thread to be scheduled).
  captured_log log;
  gl::options o;
  o.logger = log.logger;
  auto dir = std::filesystem::temp_directory_path() / ("graceful-lc-busy-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  o.diag_dir = dir;
  gl::lifecycle lc(o);
  std::mutex m;
  std::condition_variable cv;
  bool in_dump = false, dump_done = false, release = false;
  auto section = lc.add_dump_section("slow", [&] {
    std::unique_lock lk(m);
    in_dump = true;
    cv.notify_all();
    cv.wait_for(lk, 10s, [&] { return release; });
    dump_done = true;
    return std::string("slow section");
  });
  std::atomic<int> shutdown_during_dump{-1};
  auto hook = lc.on_shutdown("probe", [&](graceful::deadline) {
    std::lock_guard lk(m);
    shutdown_during_dump = in_dump && !dump_done ? 1 : 0;
  });
  ::kill(::getpid(), SIGUSR1);
  {
    std::unique_lock lk(m);
    ASSERT_TRUE(cv.wait_for(lk, 5s, [&] { return in_dump; })) << log.text();
  }
  ::kill(::getpid(), SIGTERM);
  int code = lc.run();
  {
    std::lock_guard lk(m);
    release = true;
  }
  cv.notify_all();
  EXPECT_EQ(code, 0);
  EXPECT_EQ(shutdown_during_dump.load(), 1) << "the shutdown hooks ran only after the dump\n" << log.text();
  section.reset();
  hook.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(lifecycle, the_last_hook_of_a_phase_runs_on_the_thread_that_called_run) {
  captured_log log;
  gl::lifecycle lc(quiet(log));
  const auto run_thread = std::this_thread::get_id();
  std::thread::id first, last;
  auto a = lc.on_shutdown("first", [&](graceful::deadline) { first = std::this_thread::get_id(); });
  auto b = lc.on_shutdown("last", [&](graceful::deadline) { last = std::this_thread::get_id(); });
  lc.request_stop("test");
  EXPECT_EQ(lc.run(), 0);
  EXPECT_EQ(last, run_thread);
  EXPECT_NE(first, run_thread) << "every other hook has a thread of its own";
}

TEST(lifecycle, sighup_runs_the_registered_handlers_on_the_lifecycle_thread) {
  captured_log log;
  gl::options o;
  o.logger = log.logger;
  gl::lifecycle lc(o);
  std::atomic<int> calls{0};
  std::atomic<bool> other_thread{false};
  auto main_id = std::this_thread::get_id();
  auto h = lc.on_signal(SIGHUP, "upgrade", [&] {
    other_thread = std::this_thread::get_id() != main_id;
    ++calls;
  });
  ::kill(::getpid(), SIGHUP);
  EXPECT_TRUE(graceful::test::eventually([&] { return calls.load() == 1; }, graceful::deadline::after(5s)));
  EXPECT_TRUE(other_thread);
  EXPECT_TRUE(lc.ready()) << "SIGHUP does not stop the process";
  h.reset();
  ::kill(::getpid(), SIGHUP);
  // Without a handler it is only logged (and does not stop the process); a later stop still works.
  const std::string ignored = "SIGHUP (from pid " + std::to_string(::getpid()) + ") ignored: no handler registered";
  EXPECT_TRUE(graceful::test::eventually([&] { return log.text().find(ignored) != std::string::npos; },
                                         graceful::deadline::after(5s)))
      << log.text();
  EXPECT_TRUE(lc.ready()) << "an unhandled SIGHUP does not stop the process";
  lc.request_stop("test");
  EXPECT_EQ(lc.run(), 0);
  EXPECT_EQ(calls.load(), 1);
}
