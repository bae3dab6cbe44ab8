#pragma once
// Helpers for graceful-run's integration tests: run graceful-run, read its log, inspect
// processes in /proc, and a small HTTP/1.1 load client that classifies every failure.

#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "process.hpp"

namespace graceful::test::run {

using namespace std::chrono_literals;

// ---- /proc ----

/// State letter of a process ('Z' zombie), 0 when it does not exist.
inline char proc_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() ? line[close + 2] : 0;
}
inline pid_t proc_parent(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  return static_cast<pid_t>(std::atoi(line.c_str() + close + 4));
}
/// Running (not a zombie, not gone).
inline bool alive(pid_t pid) {
  char s = proc_state(pid);
  return s != 0 && s != 'Z' && s != 'X';
}
/// Children of `parent` by /proc, with their states.
inline std::vector<std::pair<pid_t, char>> children_of(pid_t parent) {
  std::vector<std::pair<pid_t, char>> out;
  DIR* d = opendir("/proc");
  while (d) {
    auto* e = readdir(d);
    if (!e) break;
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end) continue;
    if (proc_parent(static_cast<pid_t>(pid)) == parent)
      out.emplace_back(static_cast<pid_t>(pid), proc_state(static_cast<pid_t>(pid)));
  }
  if (d) closedir(d);
  return out;
}
inline int zombies_of(pid_t parent) {
  int n = 0;
  for (auto& [p, s] : children_of(parent)) n += s == 'Z';
  return n;
}

// ---- graceful-run under test ----

/// Every pid N in `text` written as "<before>N<after>", in order. (No std::regex: GCC 12
/// warns inside it under the sanitizers.)
inline std::vector<pid_t> pids_in(const std::string& text, const std::string& before,
                                  const std::string& after) {
  std::vector<pid_t> out;
  for (auto p = text.find(before); p != std::string::npos; p = text.find(before, p + 1)) {
    auto q = p + before.size();
    auto e = q;
    while (e < text.size() && std::isdigit(static_cast<unsigned char>(text[e]))) ++e;
    if (e > q && text.compare(e, after.size(), after) == 0)
      out.push_back(static_cast<pid_t>(std::stol(text.substr(q, e - q))));
  }
  return out;
}
inline int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

/// graceful-run started by a test; the destructor stops it and kills any worker it logged,
/// so a failing test leaves no process behind.
class runner {
public:
  runner(std::vector<std::string> run_args, std::vector<std::string> command,
         std::vector<int> keep_fds = {}) {
    std::vector<std::string> argv{bin("graceful-run")};
    argv.insert(argv.end(), run_args.begin(), run_args.end());
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    proc_.emplace(child::spec{argv, {}, keep_fds});
  }
  ~runner() {
    if (!proc_->exited()) {
      proc_->signal(SIGTERM);
      if (!proc_->wait(deadline::after(5s))) proc_->signal(SIGKILL);
      proc_->wait(deadline::after(2s));
    }
    for (pid_t p : pids_in(output(), "worker ", " started"))
      if (alive(p)) ::kill(p, SIGKILL);
  }
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  child& proc() { return *proc_; }
  pid_t pid() const { return proc_->pid(); }
  std::string output() const { return proc_->output(); }
  bool wait_for(const std::string& needle, std::chrono::milliseconds d = 5s) const {
    return proc_->wait_for_output(needle, deadline::after(d));
  }
  /// Waits until `needle` occurs `n` times in the log.
  bool wait_count(const std::string& needle, int n, std::chrono::milliseconds d = 5s) const {
    return eventually([&] { return count_of(output(), needle) >= n; }, deadline::after(d));
  }
  /// The port graceful-run logged for listener `name` ("listening NAME=127.0.0.1:PORT").
  int port(const std::string& name) const {
    std::string needle = "listening " + name + "=127.0.0.1:";
    if (!wait_for(needle)) return -1;
    auto out = output();
    return std::atoi(out.c_str() + out.find(needle) + needle.size());
  }
  /// Pids logged as ready, in order.
  std::vector<pid_t> ready_workers() const { return pids_in(output(), "worker ", " ready"); }

private:
  std::optional<child> proc_;
};

// ---- HTTP ----

/// How one request ended.
enum class outcome { ok, http_error, refused, reset, closed, timeout, other };

inline const char* name(outcome o) {
  switch (o) {
  case outcome::ok: return "ok";
  case outcome::http_error: return "http_error";
  case outcome::refused: return "refused";
  case outcome::reset: return "reset";
  case outcome::closed: return "closed";
  case outcome::timeout: return "timeout";
  case outcome::other: return "other";
  }
  return "?";
}

inline outcome from_errno(int e) {
  if (e == ECONNREFUSED) return outcome::refused;
  if (e == ECONNRESET || e == EPIPE) return outcome::reset;
  if (e == EAGAIN || e == ETIMEDOUT) return outcome::timeout;
  return outcome::other;
}

/// An HTTP/1.1 client connection to 127.0.0.1:port (blocking, 5 s receive timeout).
class http_conn {
public:
  explicit http_conn(int port) : port_(port) {}
  ~http_conn() { drop(); }
  http_conn(const http_conn&) = delete;
  http_conn& operator=(const http_conn&) = delete;

  /// One GET; `body` gets the response body. Reconnects as needed; keep_alive=false sends
  /// "Connection: close". After a "Connection: close" response the next call reconnects.
  outcome get(const std::string& path, bool keep_alive, std::string* body = nullptr) {
    if (fd_ < 0) {
      fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      timeval tv{5, 0};
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      int one = 1;
      ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port_));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return fail(errno);
    }
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                      (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return fail(errno);
    std::string in;
    std::size_t header_end = std::string::npos, need = 0;
    char buf[4096];
    while (header_end == std::string::npos || in.size() < need) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) return fail(errno);
      if (n == 0) {
        drop();
        return outcome::closed;
      }
      in.append(buf, static_cast<std::size_t>(n));
      if (header_end == std::string::npos && (header_end = in.find("\r\n\r\n")) != std::string::npos) {
        std::string lower = in.substr(0, header_end);
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto cl = lower.find("content-length:");
        need = header_end + 4 + (cl == std::string::npos ? 0 : std::strtoul(lower.c_str() + cl + 15, nullptr, 10));
        close_after_ = !keep_alive || lower.find("connection: close") != std::string::npos;
      }
    }
    bool ok = in.size() > 12 && in.compare(0, 7, "HTTP/1.") == 0 && in[9] == '2';
    if (body) *body = in.substr(header_end + 4, need - header_end - 4);
    if (close_after_) drop();
    return ok ? outcome::ok : outcome::http_error;
  }

private:
  outcome fail(int e) {
    drop();
    return from_errno(e);
  }
  void drop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port_;
  int fd_ = -1;
  bool close_after_ = false;
};

/// One GET on a fresh connection; the body, or nullopt on any failure.
inline std::optional<std::string> get_body(int port, const std::string& path = "/") {
  http_conn c(port);
  std::string body;
  if (c.get(path, false, &body) != outcome::ok) return std::nullopt;
  return body;
}

/// Closed-loop load: `connections` threads, each sending GET / back to back, keep-alive or
/// a new connection per request. Counts every outcome.
class load {
public:
  load(int port, int connections, bool keep_alive) {
    for (int i = 0; i < connections; ++i)
      threads_.emplace_back([this, port, keep_alive] {
        http_conn c(port);
        while (!stop_.load()) counts_[static_cast<int>(c.get("/", keep_alive))].fetch_add(1);
      });
  }
  ~load() { stop(); }
  load(const load&) = delete;
  load& operator=(const load&) = delete;

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  long count(outcome o) const { return counts_[static_cast<int>(o)].load(); }
  long failures() const {
    long n = 0;
    for (int i = 1; i < 7; ++i) n += counts_[i].load();
    return n;
  }
  std::string summary() const {
    std::string s;
    for (int i = 0; i < 7; ++i)
      s += std::string(name(static_cast<outcome>(i))) + "=" + std::to_string(counts_[i].load()) + " ";
    return s;
  }

private:
  std::atomic<bool> stop_{false};
  std::atomic<long> counts_[7]{};
  std::vector<std::thread> threads_;
};

} // namespace graceful::test::run
