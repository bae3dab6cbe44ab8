// lifecycle-probe: a program with a lifecycle and configurable hooks, for tests that drive
// it with real signals from outside. Every flag is `--name=value`.
//   --shutdown-timeout=MS  --drain-delay=MS  --diag-dir=DIR  --profile-limit=S
//   --stuck-hook=NAME      a shutdown hook that never returns
//   --slow-hook=MS         a shutdown hook that takes MS
//   --startup-delay=MS     sleep between constructing the lifecycle and run()
//   --park-thread          a thread parked in graceful_probe_parked_thread_function
//   --busy-thread          a thread burning CPU (for the profiler)
//   --dump-section=TEXT    a dump section named "probe" with TEXT
//   --unread-stderr        stderr becomes a pipe nobody reads, and the lifecycle logs there
//   --flood-log-hook       a shutdown hook that logs until the log sink blocks (with
//                          --unread-stderr: on the full pipe), and never returns
//   --stop-during-dump     a dump section that requests a stop, then waits (at most 10 s) until
//                          run() has returned and a SIGTERM is pending: a SIGTERM that arrives
//                          after a finished stop while a SIGUSR1 dump is still being written
// Prints "probe: constructed" after the lifecycle exists and "probe: running" before run().
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <csignal>

#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <graceful/lifecycle/lifecycle.hpp>

namespace {

std::atomic<bool> g_quit{false};
std::atomic<unsigned long> g_sink{0};
std::atomic<bool> g_run_returned{false};

bool sigterm_pending() {
  sigset_t p;
  sigemptyset(&p);
  return ::sigpending(&p) == 0 && sigismember(&p, SIGTERM) == 1;
}

// Named so that a test can find it in a SIGUSR1 dump.
__attribute__((noinline)) void graceful_probe_parked_thread_function() {
  while (!g_quit.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  asm volatile("" ::: "memory");  // keep the frame: no tail call
}

__attribute__((noinline)) unsigned long graceful_probe_busy_loop(unsigned long n) {
  unsigned long x = n;
  for (int i = 0; i < 1'000'000; ++i) x = x * 6364136223846793005ul + 1442695040888963407ul;
  return x;
}

std::string_view flag(std::string_view arg, std::string_view name) {
  if (arg.substr(0, name.size()) == name && arg.size() > name.size() && arg[name.size()] == '=')
    return arg.substr(name.size() + 1);
  return {};
}

} // namespace

int main(int argc, char** argv) {
  using namespace std::chrono;
  graceful::lifecycle::options o;
  o.program_name = "lifecycle-probe";
  std::vector<std::string> stuck;
  long slow_ms = -1, startup_ms = 0;
  bool park = false, busy = false, unread_stderr = false, flood = false, stop_during_dump = false;
  std::string section;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i], v;
    if (!(v = flag(a, "--shutdown-timeout")).empty()) o.shutdown_timeout = milliseconds(std::atol(v.data()));
    else if (!(v = flag(a, "--drain-delay")).empty()) o.drain_delay = milliseconds(std::atol(v.data()));
    else if (!(v = flag(a, "--diag-dir")).empty()) o.diag_dir = std::string(v);
    else if (!(v = flag(a, "--profile-limit")).empty()) o.profile_limit = seconds(std::atol(v.data()));
    else if (!(v = flag(a, "--stuck-hook")).empty()) stuck.emplace_back(v);
    else if (!(v = flag(a, "--slow-hook")).empty()) slow_ms = std::atol(v.data());
    else if (!(v = flag(a, "--startup-delay")).empty()) startup_ms = std::atol(v.data());
    else if (!(v = flag(a, "--dump-section")).empty()) section = v;
    else if (a == "--park-thread") park = true;
    else if (a == "--busy-thread") busy = true;
    else if (a == "--unread-stderr") unread_stderr = true;
    else if (a == "--flood-log-hook") flood = true;
    else if (a == "--stop-during-dump") stop_during_dump = true;
    else {
      std::fprintf(stderr, "lifecycle-probe: unknown flag %s\n", argv[i]);
      return 2;
    }
  }

  int unread_pipe[2] = {-1, -1};
  if (unread_stderr) {
    // The read end stays open and unread: once the pipe buffer is full, write(2) blocks.
    if (::pipe(unread_pipe) != 0 || ::dup2(unread_pipe[1], 2) != 2) return 3;
    o.logger = spdlog::stderr_logger_mt("probe-stderr");
  }

  graceful::lifecycle::lifecycle lc(o);
  std::printf("probe: constructed\n");
  std::fflush(stdout);
  if (startup_ms > 0) std::this_thread::sleep_for(milliseconds(startup_ms));

  std::vector<graceful::lifecycle::registration> regs;
  std::vector<std::thread> threads;
  for (auto& name : stuck)
    regs.push_back(lc.on_shutdown(name, [](graceful::deadline) {
      for (;;) std::this_thread::sleep_for(seconds(1));
    }));
  if (slow_ms >= 0)
    regs.push_back(lc.on_shutdown("slow", [slow_ms](graceful::deadline) {
      std::this_thread::sleep_for(milliseconds(slow_ms));
    }));
  if (flood)
    regs.push_back(lc.on_shutdown("flood", [lg = o.logger ? o.logger : spdlog::default_logger()](graceful::deadline) {
      std::string line(200, 'x');
      for (;;) lg->info("probe: flooding the log {}", line);
    }));
  if (stop_during_dump)
    regs.push_back(lc.add_dump_section("stop-during-dump", [&lc] {
      lc.request_stop("probe: stop during dump");
      auto until = steady_clock::now() + seconds(10);
      while (!(g_run_returned.load() && sigterm_pending()) && steady_clock::now() < until)
        std::this_thread::sleep_for(milliseconds(5));
      return std::string("stopped during the dump");
    }));
  regs.push_back(lc.on_cleanup("probe-cleanup", [](graceful::deadline) { std::printf("probe: cleanup hook ran\n"); }));
  if (!section.empty()) regs.push_back(lc.add_dump_section("probe", [section] { return section; }));
  if (park) {
    // "probe: running" only once the thread runs: a thread still being created has every
    // signal blocked (glibc's start-up), and a dump at that moment finds it without a stack.
    std::atomic<bool> started{false};
    threads.emplace_back([&started] {
      started = true;
      graceful_probe_parked_thread_function();
    });
    while (!started.load()) std::this_thread::sleep_for(milliseconds(1));
  }
  if (busy)
    threads.emplace_back([] {
      unsigned long x = 1;
      while (!g_quit.load()) x = graceful_probe_busy_loop(x);
      g_sink = x;
    });

  std::printf("probe: running\n");
  std::fflush(stdout);
  int code = lc.run();
  g_quit = true;
  for (auto& t : threads) t.join();
  std::printf("probe: run returned %d\n", code);
  std::fflush(stdout);
  g_run_returned = true;
  return code;
}
