#pragma once
// Support for the tests that upgrade graceful-server under load from several clients
// (latency_test.cpp, real_clients_test.cpp): the server's generations followed through its pid
// file, a load generator running as a child until told to stop, and numbers from JSON output.
// Every wait is on an event (pid file changes, a process exits, a connection count is reached).

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "process.hpp"
#include "processes.hpp"

namespace graceful::test::upgrade_load {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

/// True in an ASan or TSan build (deadlines are scaled there).
constexpr bool sanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif
/// A generous deadline for one event, longer under sanitizers.
inline graceful::deadline patient(std::chrono::seconds s = 15s) { return graceful::deadline::after(sanitized ? 3 * s : s); }

/// The number right after `"key": ` in a JSON text (first occurrence), or -1. Nested keys are
/// written "outer.key": the first `key` after `"outer": `.
inline double json_number(const std::string& json, const std::string& key) {
  std::size_t from = 0;
  std::string k = key;
  if (auto dot = key.find('.'); dot != std::string::npos) {
    from = json.find("\"" + key.substr(0, dot) + "\": ");
    if (from == std::string::npos) return -1;
    k = key.substr(dot + 1);
  }
  const auto at = json.find("\"" + k + "\":", from);
  if (at == std::string::npos) return -1;
  const char* p = json.c_str() + at + k.size() + 3;
  while (*p == ' ') ++p;
  char* end = nullptr;
  const double v = std::strtod(p, &end);
  return end == p ? -1 : v;
}

/// A private temporary directory, removed at the end.
struct scratch {
  fs::path path;
  scratch() {
    char tmpl[] = "/tmp/graceful-upgrade-load-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// graceful-server and the generations its SIGHUP upgrades start (the test is their
/// subreaper). The destructor stops whichever generation is live.
class server_generations {
public:
  server_generations(const fs::path& dir, std::vector<std::string> extra = {})
      : port_(free_port()), pid_file_((dir / "server.pid").string()) {
    become_subreaper();
    std::vector<std::string> argv{bin("graceful-server"), "--listen", "127.0.0.1:" + std::to_string(port_),
                                  "--pid-file", pid_file_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    first_ = std::make_unique<child>(child::spec{argv});
    ready_ = eventually([&] { return live() == first_->pid(); }, patient());
  }
  ~server_generations() {
    const pid_t p = live();
    if (!first_->exited()) {
      first_->signal(SIGTERM);
      first_->wait(patient());
    }
    if (p > 0 && p != first_->pid()) {
      ::kill(p, SIGTERM);
      if (!wait_gone(p, patient())) kill_and_reap(p);
    }
    reap_exited();
  }

  bool ready() const { return ready_; }
  int port() const { return port_; }
  /// The pid the pid file names (the generation serving now), or 0.
  pid_t live() const { return static_cast<pid_t>(std::atoi(read_file(pid_file_).c_str())); }
  /// SIGHUP to the live generation; true once a new one named itself in the pid file and the
  /// old one has exited (its drain is over).
  bool upgrade() {
    const pid_t before = live();
    if (before <= 0 || ::kill(before, SIGHUP) != 0) return false;
    if (!eventually([&] { return live() != before && live() > 0; }, patient())) return false;
    if (before == first_->pid()) return first_->wait(patient()).has_value();
    return wait_gone(before, patient());
  }
  /// SIGTERM to the live generation; its exit status if it was the first (our child), else 0
  /// once it is gone; nullopt if it did not exit in time.
  std::optional<int> terminate() {
    const pid_t p = live();
    if (p <= 0) return std::nullopt;
    ::kill(p, SIGTERM);
    if (p == first_->pid()) return first_->wait(patient());
    return wait_gone(p, patient()) ? std::optional<int>(0) : std::nullopt;
  }
  /// Waits for the first generation (our child) to exit; its status, or nullopt on timeout.
  std::optional<int> wait_first_exit() { return first_->wait(patient()); }
  std::string first_output() const { return first_->output(); }

private:
  int port_;
  std::string pid_file_;
  std::unique_ptr<child> first_;
  bool ready_ = false;
};

/// A load generator running until stop(): its output and the file it writes its result to.
struct load_child {
  std::string name;
  std::unique_ptr<child> proc;
  std::optional<int> status;
  std::string output;
  load_child(std::string n, std::vector<std::string> argv) : name(std::move(n)) {
    proc = std::make_unique<child>(child::spec{std::move(argv)});
  }
  /// SIGINT (graceful-bench: stop sending, report) and wait for the exit.
  void stop() {
    if (!proc->exited()) proc->signal(SIGINT);
    wait();
  }
  /// Waits for it to end by itself.
  void wait() {
    status = proc->wait(patient(60s));
    output = proc->output();
  }
};

/// graceful_http_open_connections of the generation accepting on `port` now (the live one
/// after a hand-over), counting this request's own connection; -1 if unreadable.
inline long open_connections(int port) {
  const std::string m = http_get(port, std::string("/metrics"));
  const std::string key = "\ngraceful_http_open_connections ";
  const auto at = m.find(key);
  return at == std::string::npos ? -1 : std::atol(m.c_str() + at + key.size());
}

/// Waits until the live generation holds at least `n` client connections besides our own:
/// the load has moved onto it (or, at the start, is connected at all).
inline bool load_on_live_generation(int port, long n) {
  return eventually([&] { return open_connections(port) >= n + 1; }, patient());
}

} // namespace graceful::test::upgrade_load
