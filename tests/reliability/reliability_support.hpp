#pragma once
// Support for the reliability tests (issue 8): graceful-server as a child process, and what
// /proc says about it (CPU time, RSS, fds), so that tests measure the real program from outside.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "process.hpp"

namespace graceful::test::rel {

using namespace std::chrono_literals;

/// True in an ASan or TSan build: heavy tests scale down there and say so.
constexpr bool sanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif

/// Prints a figure the way every reliability test reports it: one greppable line.
inline void figure(const std::string& line) {
  std::printf("[figure] %s\n", line.c_str());
  std::fflush(stdout);
}

/// utime + stime of `pid` in clock ticks (from /proc/PID/stat), or -1 when gone.
inline long cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');  // comm may hold spaces and parentheses
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  // After ")": state(3) ... utime is field 14, stime 15 (man 5 proc).
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

/// Resident set size of `pid` in KiB (VmRSS in /proc/PID/status), or -1.
inline long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

/// Raises this process's soft RLIMIT_NOFILE to at least `n` (up to the hard limit).
/// Returns the soft limit now in force.
inline rlim_t raise_nofile(rlim_t n) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < n) {
    r.rlim_cur = std::min(n, r.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &r);
    ::getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

/// graceful-server on a free port, ready to serve. `prefix` runs before it (e.g. a shell
/// that lowers `ulimit -n` and execs it).
struct server_proc {
  int port = free_port();
  std::unique_ptr<child> proc;
  /// `extra` flags after --listen (with --threads 2 unless `extra` names --threads).
  explicit server_proc(std::vector<std::string> extra = {}, std::string shell_prefix = {}) {
    std::vector<std::string> argv{bin("graceful-server"), "--listen", "127.0.0.1:" + std::to_string(port)};
    if (std::find(extra.begin(), extra.end(), "--threads") == extra.end()) {
      argv.push_back("--threads");
      argv.push_back("2");
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (!shell_prefix.empty()) {
      std::string cmd = shell_prefix + " && exec";
      for (const auto& a : argv) cmd += " '" + a + "'";
      argv = {"/bin/sh", "-c", cmd};
    }
    proc = std::make_unique<child>(child::spec{argv});
    EXPECT_TRUE(proc->wait_for_output("listening on", deadline::after(15s))) << proc->output();
  }
  pid_t pid() const { return proc->pid(); }
};

} // namespace graceful::test::rel
