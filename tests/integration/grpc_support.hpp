#pragma once
// Test support for grpc-greeter's integration tests: the server as child processes (it
// upgrades itself, so the test is the subreaper of every generation), and a load of unary
// SayHello calls from gRPC's own C++ client that counts every call exactly once.
#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "grpc_client.hpp"
#include "process.hpp"
#include "processes.hpp"
#include "temp_dir.hpp"

namespace graceful::test::grpc_it {

using namespace std::chrono_literals;

inline std::shared_ptr<::grpc::Channel> channel(int port) { return grpc_channel(port); }

/// One SayHello (wait_for_ready, 10 s deadline); the pid that answered, or -status code.
inline int hello(const std::shared_ptr<::grpc::Channel>& ch) {
  auto stub = greeter::Greeter::NewStub(ch);
  greeter::HelloReply rep;
  auto s = say_hello(*stub, &rep, "it");
  return s.ok() ? rep.pid() : -static_cast<int>(s.error_code());
}

#ifdef GRACEFUL_HAVE_HEALTH_PROTO
inline std::string health(const std::shared_ptr<::grpc::Channel>& ch) { return grpc_health(ch); }
#endif

/// grpc-greeter on 127.0.0.1:0 with --pid-file in a private directory. The live process is
/// the one the pid file names; the destructor kills and reaps every generation.
class greeter_server {
public:
  greeter_server() : dir_("grpc-greeter") { become_subreaper(); }
  ~greeter_server() {
    if (first_ && !first_->exited()) first_->signal(SIGKILL);
    first_.reset();
    for (int round = 0; round < 3; ++round)
      for (pid_t p : children_of(::getpid())) kill_and_reap(p);
  }
  greeter_server(const greeter_server&) = delete;
  greeter_server& operator=(const greeter_server&) = delete;

  std::vector<std::string> argv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{bin("grpc-greeter"), "--listen", "127.0.0.1:0", "--pid-file", pid_file()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  /// Starts `spec` (default: argv(extra)) and waits for its logged port and its pid file.
  bool start(std::vector<std::string> extra = {}) { return start_spec(child::spec{argv(std::move(extra))}); }
  bool start_spec(child::spec spec) {
    first_ = std::make_unique<child>(std::move(spec));
    port_ = logged_port(*first_, "(port ", deadline::after(15s));
    return port_ > 0 && eventually([&] { return pid() == first_->pid(); }, deadline::after(15s));
  }
  /// SIGHUP to the live process; waits until the pid file names another process. Returns it (0: none).
  pid_t upgrade() {
    pid_t old = pid();
    if (old <= 0 || ::kill(old, SIGHUP) != 0) return 0;
    pid_t now = 0;
    eventually([&] { return (now = pid()) > 0 && now != old; }, deadline::after(15s));
    return now != old ? now : 0;
  }
  pid_t pid() const {
    auto t = read_file(pid_file());
    return t.empty() ? 0 : static_cast<pid_t>(std::atoi(t.c_str()));
  }
  std::string pid_file() const { return dir_ / "greeter.pid"; }
  int port() const noexcept { return port_; }
  child& first() { return *first_; }

private:
  temp_dir dir_;
  std::unique_ptr<child> first_;
  int port_ = 0;
};

/// Unary SayHello calls in a closed loop on `n` channels (one connection each), every call
/// with wait_for_ready, until stop().
class unary_load {
public:
  unary_load(int port, int n) {
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([this, port] {
        auto ch = channel(port);
        while (!stop_.load()) {
          int r = hello(ch);
          std::lock_guard lk(m_);
          if (r > 0) {
            ++ok_;
            pids_.insert(r);
          } else {
            ++failed_[-r];
          }
        }
      });
  }
  ~unary_load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  long ok() const { std::lock_guard lk(m_); return ok_; }
  long failed() const {
    std::lock_guard lk(m_);
    long n = 0;
    for (auto& [c, k] : failed_) n += k;
    return n;
  }
  bool served_by(pid_t p) const { std::lock_guard lk(m_); return pids_.count(p) > 0; }
  std::size_t pids() const { std::lock_guard lk(m_); return pids_.size(); }
  std::string summary() const {
    std::lock_guard lk(m_);
    std::string s = "ok " + std::to_string(ok_) + ", pids " + std::to_string(pids_.size()) + ", failed:";
    for (auto& [c, k] : failed_) s += " code" + std::to_string(c) + "=" + std::to_string(k);
    return s;
  }

private:
  std::atomic<bool> stop_{false};
  mutable std::mutex m_;
  long ok_ = 0;
  std::map<int, long> failed_;
  std::set<int> pids_;
  std::vector<std::thread> threads_;
};

} // namespace graceful::test::grpc_it
