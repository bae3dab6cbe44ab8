#pragma once
// Test support: requests classified the way a user counts failures (refused, reset, closed
// before a response, timed out, non-2xx), and a closed-loop load of such requests.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"

namespace graceful::test {

/// How one request ended.
enum class outcome { ok, http_error, refused, reset, closed, timeout, other };
const char* name(outcome o);

/// GETs on one connection to 127.0.0.1:port (http_conn underneath, 5 s per response),
/// reconnecting when the previous response closed it.
class request_client {
public:
  explicit request_client(int port) : port_(port) {}
  /// One GET; `body` gets the response body. keep_alive=false sends "Connection: close".
  outcome get(const std::string& path, bool keep_alive, std::string* body = nullptr);

private:
  int port_;
  std::unique_ptr<http_conn> conn_;
};

/// One GET on a fresh connection; the body of a 2xx response, or nullopt on any failure.
std::optional<std::string> get_body(int port, const std::string& path = "/");

/// Closed-loop load: `connections` threads, each sending GET / back to back, keep-alive or
/// a new connection per request. Counts every outcome.
class load {
public:
  load(int port, int connections, bool keep_alive);
  ~load() { stop(); }
  load(const load&) = delete;
  load& operator=(const load&) = delete;

  void stop();
  long count(outcome o) const { return counts_[static_cast<int>(o)].load(); }
  long failures() const;
  std::string summary() const;

private:
  std::atomic<bool> stop_{false};
  std::atomic<long> counts_[7]{};
  std::vector<std::thread> threads_;
};

} // namespace graceful::test
