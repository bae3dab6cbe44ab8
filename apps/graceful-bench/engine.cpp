#include "engine.hpp"
#include "h2_load.hpp"

#include <thread>

#include <fmt/format.h>

namespace graceful::bench {

std::atomic<bool> stop_requested{false};

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

std::size_t second_of(const plan& p, clock::time_point t, std::size_t size) {
  const auto since = duration_cast<std::chrono::seconds>(t - p.start).count();
  return std::min<std::size_t>(static_cast<std::size_t>(std::max<std::int64_t>(0, since)), size - 1);
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

} // namespace

void record_request(run_stats& s, const plan& p, clock::time_point intended, outcome k, int status,
                    clock::time_point now) {
  const auto idx = static_cast<std::size_t>(k);
  ++s.counts[idx];
  const auto since = intended - p.start;
  const auto sec = second_of(p, intended, s.seconds.size());
  const auto slot = std::min<std::size_t>(
      static_cast<std::size_t>(std::max<std::int64_t>(0, duration_cast<milliseconds>(since).count() / 100)),
      s.slots.size() - 1);
  ++s.seconds[sec].counts[idx];
  const bool in_window = intended >= p.window_from && intended < p.window_to;
  if (in_window) ++s.window_counts[idx];
  if (k == outcome::ok) {
    ++s.slots[slot].ok;
    const auto ms = std::min<std::size_t>(
        static_cast<std::size_t>(std::max<std::int64_t>(0, duration_cast<milliseconds>(now - p.start).count())),
        s.success_ms.size() * 64 - 1);
    s.success_ms[ms / 64] |= std::uint64_t{1} << (ms % 64);
  } else {
    ++s.slots[slot].failed;
  }
  if (status > 0) {
    const auto us = static_cast<std::uint64_t>(
        std::max<std::int64_t>(0, duration_cast<microseconds>(now - intended).count()));
    if (status < static_cast<int>(s.by_status.size())) ++s.by_status[static_cast<std::size_t>(status)];
    s.latency.record(us);
    s.seconds[sec].latency.record(us);
    s.slots[slot].max_us = std::max<std::uint32_t>(
        s.slots[slot].max_us, static_cast<std::uint32_t>(std::min<std::uint64_t>(us, UINT32_MAX)));
    if (in_window) s.window_latency.record(us);
  }
}

void record_connection_opened(run_stats& s, const plan& p, std::optional<reconnect_cause> cause,
                              clock::time_point now) {
  auto& sec = s.seconds[second_of(p, now, s.seconds.size())].connections;
  ++s.connections.opened;
  ++sec.opened;
  if (cause) {
    ++s.connections.reconnects[static_cast<std::size_t>(*cause)];
    ++sec.reconnects[static_cast<std::size_t>(*cause)];
  }
}

paced_client::paced_client(worker& w, unsigned global_index)
    : w_(w), p_(w.p()), index_(global_index), pace_(w.ioc()),
      rng_(0x6a09e667f3bcc909ULL ^ (std::uint64_t{global_index} * 0x9e3779b97f4a7c15ULL) ^
           static_cast<std::uint64_t>(clock::now().time_since_epoch().count())) {}

void paced_client::start() {
  if (p_.o.rate) {
    // Spread the connections' schedules evenly over one interval so that the total rate is
    // smooth rather than C requests at once every interval.
    next_ = p_.start + duration_cast<nanoseconds>(std::chrono::duration<double>(double(index_) / *p_.o.rate));
    if (next_ >= p_.stop_at) return finish();
    return wait_until(next_);
  }
  if (p_.o.think) {
    // Think time from the start too: otherwise every client fires at t=0 and the pauses stay
    // in lock step for the first rounds.
    const auto first = p_.start + duration_cast<nanoseconds>(*p_.o.think * (double(splitmix64(rng_) >> 11) / double(1ULL << 53)));
    if (first >= p_.stop_at) return finish();
    return wait_until(first);
  }
  begin(clock::now());
}

std::chrono::nanoseconds paced_client::think_pause() {
  // Uniform over [0.5 D, 1.5 D): the ±50% jitter keeps clients from synchronising.
  const double u = double(splitmix64(rng_) >> 11) / double(1ULL << 53);
  return duration_cast<nanoseconds>(*p_.o.think * (0.5 + u));
}

void paced_client::wait_until(clock::time_point t) {
  pace_.expires_at(t);
  pace_.async_wait([this](const error_code& ec) {
    if (ec || stop_requested.load(std::memory_order_relaxed) || clock::now() >= p_.stop_at) return finish();
    begin(p_.o.rate ? next_ : clock::now());
  });
}

void paced_client::after_request(bool failed) {
  if (stop_requested.load(std::memory_order_relaxed)) return finish();
  const auto now = clock::now();
  if (p_.o.rate) {
    // Open loop: the schedule does not wait for the server. A late response makes the next
    // request late too, and its latency counts from when it should have gone (no
    // coordinated omission).
    next_ += p_.interval;
    if (next_ >= p_.stop_at) return finish();
    if (next_ <= now) return begin(next_);
    return wait_until(next_);
  }
  if (now >= p_.stop_at) return finish();
  // A pause that would end after the run ends the client now: the run's length stays -d.
  if (p_.o.think) {
    const auto t = now + think_pause();
    return t >= p_.stop_at ? finish() : wait_until(t);
  }
  if (failed && p_.o.fail_pause.count() > 0) return wait_until(now + p_.o.fail_pause);
  begin(now);
}

void paced_client::finish() {
  if (done_) return;
  done_ = true;
  close_connection();
  w_.client_done();
}

worker::worker(const plan& p, std::vector<unsigned> indices) : p_(p), sweep_(ioc_) {
  stats.prepare(p.o.duration + p.o.timeout + std::chrono::seconds(1));
  for (unsigned i : indices) {
    if (p.o.h2) add_h2_clients(*this, i, clients_);
    else clients_.push_back(make_http1_client(*this, i));
  }
}

void worker::run() {
  active_ = clients_.size();
  for (auto& c : clients_) asio::post(ioc_, [c = c.get()] { c->start(); });
  arm_sweep();
  ioc_.run();
}

void worker::client_done() {
  if (--active_ == 0) {
    ended = clock::now();
    sweep_.cancel();
  }
}

void worker::arm_sweep() {
  // A sweep over all clients replaces one timer per request: timeouts cost nothing on the
  // request path, at the price of firing up to one sweep period late.
  const auto period = std::clamp<nanoseconds>(p_.o.timeout / 10, milliseconds(1), milliseconds(50));
  sweep_.expires_after(period);
  sweep_.async_wait([this](const error_code& ec) {
    if (ec || active_ == 0) return;
    const auto now = clock::now();
    const bool interrupted = stop_requested.load(std::memory_order_relaxed);
    for (auto& c : clients_) {
      c->check_timeout(now);
      if (interrupted) c->interrupt();
    }
    arm_sweep();
  });
}

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

  plan p{o, endpoint, build_http1_request(o)};
  p.head = o.method == "HEAD";
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned threads = std::min(o.threads ? o.threads : cores, o.connections);
  // Every client (an HTTP/2 connection has -m of them) gets its share of the rate.
  const double clients = double(o.connections) * (o.h2 ? std::max(1u, o.streams) : 1u);
  if (o.rate) p.interval = duration_cast<nanoseconds>(std::chrono::duration<double>(clients / *o.rate));

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
