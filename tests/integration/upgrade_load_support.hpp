#pragma once
// Support for the tests that upgrade graceful-server (tests/support/graceful_server.hpp's
// upgradable_server) under load from several clients (latency_test.cpp, real_clients_test.cpp):
// a load generator running as a child until told to stop, numbers from JSON output, and the
// live generation's connection count. Every wait is on an event (a process exits, a
// connection count is reached).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "figure.hpp"
#include "graceful_server.hpp"
#include "http_client.hpp"
#include "process.hpp"
#include "processes.hpp"

namespace graceful::test::upgrade_load {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

/// A generous deadline for one event, longer under sanitizers.
inline graceful::deadline patient(std::chrono::seconds s = 15s) { return graceful::deadline::after(scaled(s)); }

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

/// A misbehaving-http-server (tests/programs) in `mode` on port 0, listening once constructed.
struct misbehaving {
  std::unique_ptr<child> proc;
  int port = 0;
  explicit misbehaving(const std::string& mode, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{bin("misbehaving-http-server"), "--mode", mode};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<child>(child::spec{argv});
    port = logged_port(*proc, "listening on 127.0.0.1:", patient());
    EXPECT_GT(port, 0) << proc->output();
  }
  std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port) + path; }
};

/// A TCP port held (bound, not listening) for the test's life: connecting to it is refused,
/// and nobody else can take it meanwhile.
struct refusing_port {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port = 0;
  refusing_port() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
  }
  ~refusing_port() { ::close(fd); }
};

/// graceful_http_open_connections of the generation accepting on `port` now (the live one
/// after a hand-over), counting this request's own connection; -1 if unreadable.
inline long open_connections(int port) {
  const std::string m = http_get_text(port, "/metrics");
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
