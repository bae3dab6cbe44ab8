#pragma once
/// \file
/// The protocol-independent half of the load engine: the run plan, worker threads (one
/// io_context each), the pacing of a client's requests (closed loop, think time, open loop),
/// and the accounting of requests and connections.
///
/// The seam: a protocol client (HTTP/1.1 in load.cpp; another protocol goes in its own file
/// beside it) derives from `paced_client` and implements two things:
///   - `begin(intended)`: send one request, on a reused connection if it is still usable
///     (`careful_reuse_check`), else on a new one, then call `record_connection_opened` when a
///     connection opens and finally exactly one of `record_request` + `after_request(failed)`;
///   - `close_connection()`: drop whatever connection it holds (run end, interruption).
/// Everything else — when the next request goes, timeouts sweep, stats — lives here.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "load.hpp"
#include "options.hpp"
#include "reuse_check.hpp"
#include "stats.hpp"

namespace graceful::bench {

/// Read-only state every worker shares.
struct plan {
  const bench_options& o;
  boost::asio::ip::tcp::endpoint endpoint;
  std::string request;  ///< HTTP/1.1: the request bytes, built once
  bool head = false;    ///< HEAD: responses carry no body whatever their headers say
  clock::time_point start{};
  clock::time_point stop_at{};
  clock::time_point window_from = clock::time_point::max();
  clock::time_point window_to = clock::time_point::min();
  std::chrono::nanoseconds interval{};  ///< open loop: time between two requests of one connection
};

/// Records one finished request (its class, status code when a response arrived, latency from
/// the intended send time) into `s`.
void record_request(run_stats& s, const plan& p, clock::time_point intended, outcome k, int status,
                    clock::time_point now);
/// Records a connection that has just opened; `cause` is why the client's previous connection
/// was retired (none for a client's first connection, and with --close, where a connection per
/// request is the client's own choice).
void record_connection_opened(run_stats& s, const plan& p, std::optional<reconnect_cause> cause,
                              clock::time_point now);

class worker;

/// One simulated client: a loop of requests, one in flight at a time. Subclasses speak the
/// protocol; this class decides when each request goes.
class paced_client {
public:
  paced_client(worker& w, unsigned global_index);
  virtual ~paced_client() = default;
  paced_client(const paced_client&) = delete;
  paced_client& operator=(const paced_client&) = delete;

  /// Schedules the first request.
  void start();
  /// Called by the worker's sweep: a request past its deadline is cut.
  virtual void check_timeout(clock::time_point now) = 0;
  /// Called when the run is interrupted: stops a client that waits for its next turn.
  void interrupt() { pace_.cancel(); }

protected:
  /// Sends one request meant to go at `intended` (the latency origin).
  virtual void begin(clock::time_point intended) = 0;
  /// Drops the connection held, if any.
  virtual void close_connection() = 0;
  /// Called once per request after it was recorded: schedules the next one or ends.
  void after_request(bool failed);

  worker& w_;
  const plan& p_;
  const unsigned index_;

private:
  void wait_until(clock::time_point t);
  void finish();
  std::chrono::nanoseconds think_pause();

  boost::asio::steady_timer pace_;
  clock::time_point next_{};  ///< open loop: the next intended send time
  std::uint64_t rng_;         ///< think-time jitter (splitmix64 state)
  bool done_ = false;
};

/// One thread's share of the clients, on its own io_context.
class worker {
public:
  worker(const plan& p, std::vector<unsigned> indices);
  void run();
  void client_done();

  boost::asio::io_context& ioc() { return ioc_; }
  const plan& p() const { return p_; }
  run_stats stats;
  clock::time_point ended{};

private:
  void arm_sweep();

  const plan& p_;
  // One io_context per thread, run by that thread only: no cross-thread handoff of handlers.
  boost::asio::io_context ioc_{1};
  boost::asio::steady_timer sweep_;
  std::vector<std::unique_ptr<paced_client>> clients_;
  std::size_t active_ = 0;
};

/// The HTTP/1.1 client (load.cpp).
std::unique_ptr<paced_client> make_http1_client(worker& w, unsigned global_index);
/// The HTTP/1.1 request bytes for `o`.
std::string build_http1_request(const bench_options& o);

} // namespace graceful::bench
