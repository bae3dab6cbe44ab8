// The only translation unit that includes Asio and Beast: keeps graceful-bench's build cheap.
#include "load.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

namespace graceful::bench {

std::atomic<bool> stop_requested{false};

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

/// A response parser that keeps only what the accounting needs (the status code; framing and
/// keep-alive are tracked by basic_parser itself) and discards the body as it streams past:
/// no header map, no body storage, no allocation per response.
class response_sink final : public http::basic_parser<false> {
public:
  int status = 0;

private:
  void on_request_impl(http::verb, boost::beast::string_view, boost::beast::string_view, int,
                       error_code&) override {}
  void on_response_impl(int code, boost::beast::string_view, int, error_code&) override {
    status = code;
  }
  void on_field_impl(http::field, boost::beast::string_view, boost::beast::string_view,
                     error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view body, error_code&) override {
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                 error_code&) override {
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
};

/// Read-only state every worker shares.
struct plan {
  const bench_options& o;
  tcp::endpoint endpoint;
  std::string request;  ///< the request bytes, built once
  bool head = false;    ///< HEAD: responses carry no body whatever their headers say
  clock::time_point start{};
  clock::time_point stop_at{};
  clock::time_point window_from = clock::time_point::max();
  clock::time_point window_to = clock::time_point::min();
  nanoseconds interval{};  ///< open loop: time between two requests of one connection
};

class worker;

/// One client connection: a loop of requests, one in flight at a time (HTTP/1.1 without
/// pipelining, as browsers and proxies do).
class connection {
public:
  connection(worker& w, unsigned global_index);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  void start();
  /// Called by the worker's sweep: closes the socket if the request is past its deadline.
  void check_timeout(clock::time_point now);
  /// Called when the run is interrupted: stops a connection that waits for its next turn.
  void interrupt() { pace_.cancel(); }

private:
  void begin(clock::time_point intended);
  void connect();
  void send();
  void reset_parser();
  void read();
  void parse();
  void on_read_error(const error_code& ec);
  void complete(int status, bool keep_alive);
  void fail(outcome k);
  void record(outcome k, int status, clock::time_point now);
  void after_request(bool failed);
  void finish();
  void close_socket() {
    error_code ignored;
    sock_.close(ignored);
    have_ = 0;
  }

  // As wrk: 8 KiB per connection holds any response header Beast accepts (header_limit 8 KiB)
  // and keeps -c 10000 at 80 MB.
  static constexpr std::size_t buffer_size = 8 * 1024;

  worker& w_;
  const plan& p_;
  tcp::socket sock_;
  asio::steady_timer pace_;
  std::optional<response_sink> parser_;
  std::unique_ptr<char[]> buf_;
  std::size_t have_ = 0;
  clock::time_point intended_{};   ///< when this request was meant to go (latency origin)
  clock::time_point deadline_{};   ///< when it times out
  clock::time_point next_{};       ///< open loop: the next intended send time
  bool in_flight_ = false;
  bool timed_out_ = false;
  bool done_ = false;
  unsigned index_;
};

class worker {
public:
  worker(const plan& p, std::vector<unsigned> indices) : p_(p), sweep_(ioc_) {
    stats.prepare(p.o.duration + p.o.timeout + std::chrono::seconds(1));
    for (unsigned i : indices) conns_.push_back(std::make_unique<connection>(*this, i));
  }
  void run() {
    active_ = conns_.size();
    for (auto& c : conns_) asio::post(ioc_, [c = c.get()] { c->start(); });
    arm_sweep();
    ioc_.run();
  }
  void connection_done() {
    if (--active_ == 0) {
      ended = clock::now();
      sweep_.cancel();
    }
  }

  asio::io_context& ioc() { return ioc_; }
  const plan& p() const { return p_; }
  run_stats stats;
  clock::time_point ended{};

private:
  void arm_sweep() {
    // A sweep over all connections replaces one timer per request: timeouts cost nothing on
    // the request path, at the price of firing up to one sweep period late.
    const auto period = std::clamp<nanoseconds>(p_.o.timeout / 10, milliseconds(1), milliseconds(50));
    sweep_.expires_after(period);
    sweep_.async_wait([this](const error_code& ec) {
      if (ec || active_ == 0) return;
      const auto now = clock::now();
      const bool interrupted = stop_requested.load(std::memory_order_relaxed);
      for (auto& c : conns_) {
        c->check_timeout(now);
        if (interrupted) c->interrupt();
      }
      arm_sweep();
    });
  }

  const plan& p_;
  // One io_context per thread, run by that thread only: no cross-thread handoff of handlers.
  asio::io_context ioc_{1};
  asio::steady_timer sweep_;
  std::vector<std::unique_ptr<connection>> conns_;
  std::size_t active_ = 0;
};

connection::connection(worker& w, unsigned global_index)
    : w_(w), p_(w.p()), sock_(w.ioc()), pace_(w.ioc()), buf_(new char[buffer_size]),
      index_(global_index) {}

void connection::start() {
  if (!p_.o.rate) return begin(clock::now());
  // Spread the connections' schedules evenly over one interval so that the total rate is
  // smooth rather than C requests at once every interval.
  next_ = p_.start + duration_cast<nanoseconds>(std::chrono::duration<double>(double(index_) / *p_.o.rate));
  if (next_ >= p_.stop_at) return finish();
  pace_.expires_at(next_);
  pace_.async_wait([this](const error_code& ec) {
    if (ec || stop_requested.load(std::memory_order_relaxed)) return finish();
    begin(next_);
  });
}

void connection::begin(clock::time_point intended) {
  intended_ = intended;
  deadline_ = clock::now() + p_.o.timeout;
  in_flight_ = true;
  timed_out_ = false;
  if (sock_.is_open()) return send();
  connect();
}

void connection::connect() {
  // Our own socket() call so that the fd is close-on-exec: the --exec command (which may
  // start the server being tested) must not inherit client connections, or a server-side
  // close would never reach us.
  const int fd = ::socket(p_.endpoint.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(outcome::other);
  error_code ec;
  sock_.assign(p_.endpoint.protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return fail(outcome::other);
  }
  sock_.async_connect(p_.endpoint, [this](const error_code& cec) {
    if (cec) {
      if (timed_out_) return fail(outcome::timeout);
      if (cec == asio::error::connection_refused) return fail(outcome::connect_refused);
      if (cec == asio::error::connection_reset) return fail(outcome::connection_reset);
      return fail(outcome::other);
    }
    // TCP simultaneous open: while nothing listens on a port in the ephemeral range, connect()
    // can pick that same port as its local one and connect to itself (tcp(7)). That is a
    // refused connection in disguise, and it would hold the port the restarted server wants.
    error_code lec;
    if (sock_.local_endpoint(lec) == p_.endpoint && !lec) return fail(outcome::connect_refused);
    error_code ignored;
    sock_.set_option(tcp::no_delay(true), ignored);
    send();
  });
}

void connection::send() {
  reset_parser();
  asio::async_write(sock_, asio::buffer(p_.request), [this](const error_code& ec, std::size_t) {
    if (ec) {
      if (timed_out_) return fail(outcome::timeout);
      // EPIPE on Linux means the peer's RST already arrived: the same loss as a reset.
      if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
        return fail(outcome::connection_reset);
      return fail(outcome::other);
    }
    if (have_ > 0) return parse();
    read();
  });
}

void connection::reset_parser() {
  parser_.emplace();
  parser_->eager(true);
  // No limit: the body is discarded as it streams. (Not boost::none: Beast 1.74 compares
  // the Content-Length against the optional and an empty optional rejects every body.)
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  if (p_.head) parser_->skip(true);
}

void connection::read() {
  sock_.async_read_some(asio::buffer(buf_.get() + have_, buffer_size - have_),
                        [this](const error_code& ec, std::size_t n) {
                          if (ec) return on_read_error(ec);
                          have_ += n;
                          parse();
                        });
}

void connection::parse() {
  for (;;) {
    error_code ec;
    const std::size_t used = parser_->put(asio::buffer(buf_.get(), have_), ec);
    if (used > 0) {
      std::memmove(buf_.get(), buf_.get() + used, have_ - used);
      have_ -= used;
    }
    if (ec == http::error::need_more) {
      if (have_ == buffer_size) return fail(outcome::other);  // header beyond the buffer
      return read();
    }
    if (ec) return fail(outcome::other);
    if (parser_->is_done()) {
      const int status = parser_->status;
      if (status >= 100 && status < 200 && status != 101) {
        // An interim response (100 Continue, 103 Early Hints): the final one follows.
        reset_parser();
        if (have_ == 0) return read();
        continue;
      }
      return complete(status, parser_->keep_alive());
    }
    if (have_ == 0) return read();
  }
}

void connection::on_read_error(const error_code& ec) {
  if (timed_out_) return fail(outcome::timeout);
  if (ec == asio::error::eof) {
    // A body delimited by the end of the connection (no Content-Length, not chunked) is
    // complete only now (RFC 9112 6.3 rule 8).
    if (parser_ && parser_->got_some()) {
      error_code pe;
      parser_->put_eof(pe);
      if (!pe && parser_->is_done()) return complete(parser_->status, false);
    }
    return fail(outcome::closed_before_response);
  }
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
    return fail(outcome::connection_reset);
  return fail(outcome::other);
}

void connection::check_timeout(clock::time_point now) {
  if (in_flight_ && !timed_out_ && now >= deadline_) {
    timed_out_ = true;
    // Closing cancels the pending connect/write/read; its handler sees timed_out_.
    error_code ignored;
    sock_.close(ignored);
  }
}

void connection::complete(int status, bool keep_alive) {
  const auto now = clock::now();
  const outcome k = status >= 200 && status < 400 ? outcome::ok
                    : status >= 400 && status < 600 ? outcome::http_error
                                                    : outcome::other;
  record(k, status, now);
  // `Connection: close` (or HTTP/1.0, or a body ended by EOF) means this connection is done:
  // the next request opens a new one. That is the protocol working, not a failure.
  if (!keep_alive || p_.o.close || !sock_.is_open()) close_socket();
  after_request(k != outcome::ok);
}

void connection::fail(outcome k) {
  record(k, 0, clock::now());
  close_socket();
  after_request(true);
}

void connection::record(outcome k, int status, clock::time_point now) {
  in_flight_ = false;
  auto& s = w_.stats;
  const auto idx = static_cast<std::size_t>(k);
  ++s.counts[idx];
  const auto since = intended_ - p_.start;
  const auto sec = std::min<std::size_t>(
      static_cast<std::size_t>(std::max<std::int64_t>(0, duration_cast<std::chrono::seconds>(since).count())),
      s.seconds.size() - 1);
  const auto slot = std::min<std::size_t>(
      static_cast<std::size_t>(std::max<std::int64_t>(0, duration_cast<milliseconds>(since).count() / 100)),
      s.slots.size() - 1);
  ++s.seconds[sec].counts[idx];
  const bool in_window = intended_ >= p_.window_from && intended_ < p_.window_to;
  if (in_window) ++s.window_counts[idx];
  if (k == outcome::ok) {
    ++s.slots[slot].ok;
    const auto ms = std::min<std::size_t>(
        static_cast<std::size_t>(std::max<std::int64_t>(0, duration_cast<milliseconds>(now - p_.start).count())),
        s.success_ms.size() * 64 - 1);
    s.success_ms[ms / 64] |= std::uint64_t{1} << (ms % 64);
  } else {
    ++s.slots[slot].failed;
  }
  if (status > 0) {
    const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(0, duration_cast<microseconds>(now - intended_).count()));
    if (status < static_cast<int>(s.by_status.size())) ++s.by_status[static_cast<std::size_t>(status)];
    s.latency.record(us);
    s.seconds[sec].latency.record(us);
    s.slots[slot].max_us = std::max<std::uint32_t>(s.slots[slot].max_us,
                                                   static_cast<std::uint32_t>(std::min<std::uint64_t>(us, UINT32_MAX)));
    if (in_window) s.window_latency.record(us);
  }
}

void connection::after_request(bool failed) {
  if (stop_requested.load(std::memory_order_relaxed)) return finish();
  const auto now = clock::now();
  if (p_.o.rate) {
    // Open loop: the schedule does not wait for the server. A late response makes the next
    // request late too, and its latency counts from when it should have gone (no
    // coordinated omission).
    next_ += p_.interval;
    if (next_ >= p_.stop_at) return finish();
    if (next_ <= now) return begin(next_);
    pace_.expires_at(next_);
    pace_.async_wait([this](const error_code& ec) {
      if (ec || stop_requested.load(std::memory_order_relaxed)) return finish();
      begin(next_);
    });
    return;
  }
  if (now >= p_.stop_at) return finish();
  if (failed && p_.o.fail_pause.count() > 0) {
    pace_.expires_after(p_.o.fail_pause);
    pace_.async_wait([this](const error_code& ec) {
      if (ec || stop_requested.load(std::memory_order_relaxed) || clock::now() >= p_.stop_at)
        return finish();
      begin(clock::now());
    });
    return;
  }
  begin(now);
}

void connection::finish() {
  if (done_) return;
  done_ = true;
  close_socket();
  w_.connection_done();
}

std::string build_request(const bench_options& o) {
  std::string r = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: graceful-bench\r\nAccept: */*\r\n",
                              o.method, o.where.path, o.where.host_header);
  for (const auto& h : o.headers) r += h + "\r\n";
  if (o.close) r += "Connection: close\r\n";
  if (o.body_size > 0 || o.method == "POST" || o.method == "PUT" || o.method == "PATCH")
    r += fmt::format("Content-Type: application/octet-stream\r\nContent-Length: {}\r\n", o.body_size);
  r += "\r\n";
  r.append(o.body_size, 'x');
  return r;
}

} // namespace

run_result run_load_impl(const bench_options& o, void (*on_start)(void*, clock::time_point), void* ctx) {
  run_result out;
  tcp::endpoint endpoint;
  {
    asio::io_context resolver_ctx;
    tcp::resolver resolver(resolver_ctx);
    error_code ec;
    auto results = resolver.resolve(o.where.host, o.where.port, ec);
    if (ec || results.empty()) {
      out.error = fmt::format("cannot resolve {}:{}: {}", o.where.host, o.where.port,
                              ec ? ec.message() : "no address");
      return out;
    }
    endpoint = results.begin()->endpoint();
  }

  plan p{o, endpoint, build_request(o), false, {}, {}};
  p.head = o.method == "HEAD";
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned threads = std::min(o.threads ? o.threads : cores, o.connections);
  if (o.rate) p.interval = duration_cast<nanoseconds>(std::chrono::duration<double>(double(o.connections) / *o.rate));

  // Workers are built (and their timelines allocated) before the clock starts.
  std::vector<std::unique_ptr<worker>> workers;
  std::vector<std::vector<unsigned>> shares(threads);
  for (unsigned i = 0; i < o.connections; ++i) shares[i % threads].push_back(i);
  for (auto& share : shares) workers.push_back(std::make_unique<worker>(p, share));
  // The start is set a little ahead so that every thread is running when it arrives.
  p.start = clock::now() + milliseconds(2);
  p.stop_at = p.start + o.duration;
  if (o.at) {
    p.window_from = p.start + *o.at - milliseconds(500);
    p.window_to = p.start + *o.at + milliseconds(500);
  }
  on_start(ctx, p.start);

  std::vector<std::thread> ts;
  for (auto& w : workers) {
    ts.emplace_back([&w, start = p.start] {
      std::this_thread::sleep_until(start);
      w->run();
    });
  }
  for (auto& t : ts) t.join();

  out.start = p.start;
  out.stats = std::move(workers.front()->stats);
  clock::time_point end = p.start;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (i > 0) out.stats.merge(workers[i]->stats);
    end = std::max(end, workers[i]->ended);
  }
  out.load_end = end - p.start;
  out.threads = threads;
  return out;
}

} // namespace graceful::bench
