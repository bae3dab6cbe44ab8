// The end of shutdown's idle grace (README: an idle keep-alive connection is not cut but
// answers its next request with Connection: close, or closes after shutdown_idle_grace). A
// request that arrives just as the grace of its idle connection expires must get a response,
// or provably never have been sent / processed: then a client may retry it (RFC 9112 9.3.1:
// a request on a reused connection that closes without any response byte). What must never
// happen is a request the server processed whose response the client never gets.
//
// Forty idle keep-alive connections, and on each one more request sent at a moment spread
// across the grace's expiry. On loopback a FIN reaches the client the moment it is sent, so
// every request is either answered or finds its connection already closed before it is
// written. Through delay_proxy (20 ms each way) a request can be on the wire while the
// server's FIN is: it may go unanswered, but then the server never processed it.

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <graceful/http/server.hpp>

#include "delay_proxy.hpp"
#include "figure.hpp"
#include "http_client.hpp"

using namespace graceful::test;
using namespace std::chrono_literals;
namespace http = graceful::http;
using graceful::deadline;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int connections = 40;
constexpr auto grace = 300ms;

/// GET /n?id=X answers X and records that a handler processed X.
struct processed_ids {
  std::mutex m;
  std::set<std::string> ids;
  bool has(const std::string& id) {
    std::lock_guard lk(m);
    return ids.count(id) > 0;
  }
};

http::router id_routes(processed_ids& seen) {
  http::router r;
  r.get("/n", [&seen](http::context& c) {
    std::string id(c.request.query_param("id").value_or(""));
    {
      std::lock_guard lk(seen.m);
      seen.ids.insert(id);
    }
    c.response.body = id;
  });
  return r;
}

enum class fate { answered, closed_before_send, unanswered_unprocessed, unanswered_processed, broken };

struct tally {
  int n[5] = {};
  int& operator[](fate f) { return n[static_cast<int>(f)]; }
};

/// Runs the scenario; `through_delay` puts delay_proxy between client and server.
tally requests_at_the_end_of_the_grace(bool through_delay, std::string& why) {
  processed_ids seen;
  http::options o;
  o.threads = 2;
  o.shutdown_idle_grace = grace;
  http::server srv(id_routes(seen), o);
  auto port = srv.listen("127.0.0.1:0");
  EXPECT_TRUE(port) << port.error().message();
  std::unique_ptr<delay_proxy> proxy;
  int target = port ? port.value() : 0;
  const auto one_way = through_delay ? 20ms : 0ms;
  if (through_delay) {
    proxy = std::make_unique<delay_proxy>(delay_proxy_options{.upstream_port = target, .delay = 20ms});
    EXPECT_TRUE(proxy->ok()) << proxy->error().message();
    target = proxy->port();
  }
  // Idle keep-alive connections: each has been used once.
  std::vector<std::unique_ptr<http_conn>> conns;
  for (int i = 0; i < connections; ++i) {
    auto c = std::make_unique<http_conn>(target);
    auto id = "warm-" + std::to_string(i);
    EXPECT_TRUE(c->connected() && c->send(get_request("/n?id=" + id)));
    auto r = c->read_response(deadline::after(5s));
    EXPECT_TRUE(r && r->body == id && !r->closes()) << "connection " << i;
    conns.push_back(std::move(c));
  }
  // The server sees the grace end `grace` after shutdown starts; the client sees that
  // `one_way` later. Send times spread from 2/3 to 4/3 of it.
  auto t0 = clock_type::now();
  auto done = std::async(std::launch::async, [&] { return srv.shutdown(deadline::after(10s)); });
  std::vector<fate> fates(connections, fate::broken);
  std::vector<std::thread> clients;
  for (int i = 0; i < connections; ++i)
    clients.emplace_back([&, i] {
      auto& c = *conns[static_cast<std::size_t>(i)];
      auto at = t0 + one_way + grace * 2 / 3 + (grace * 2 / 3) * i / (connections - 1);
      std::this_thread::sleep_until(at);
      auto end = c.read_until_close(deadline::after(0ms));  // has the server closed it already?
      if (end == read_end::eof || end == read_end::reset) {
        fates[static_cast<std::size_t>(i)] = fate::closed_before_send;
        return;
      }
      auto id = "late-" + std::to_string(i);
      if (!c.send(get_request("/n?id=" + id))) {
        fates[static_cast<std::size_t>(i)] = seen.has(id) ? fate::unanswered_processed : fate::unanswered_unprocessed;
        return;
      }
      auto r = c.read_response(deadline::after(5s));
      if (r && r->status == 200 && r->body == id) {
        fates[static_cast<std::size_t>(i)] = r->closes() ? fate::answered : fate::broken;  // must carry close
        (void)c.read_until_close(deadline::after(5s));  // the server's FIN; we close as a client would
      }
      else if (!r)
        fates[static_cast<std::size_t>(i)] = seen.has(id) ? fate::unanswered_processed : fate::unanswered_unprocessed;
    });
  for (auto& t : clients) t.join();
  auto r = done.get();
  if (!r) why = "shutdown: " + r.error().message();
  tally t;
  for (auto f : fates) ++t[f];
  return t;
}

std::string describe(tally t) {
  return std::to_string(t[fate::answered]) + " answered with Connection: close, " +
         std::to_string(t[fate::closed_before_send]) + " found the connection closed before sending, " +
         std::to_string(t[fate::unanswered_unprocessed]) + " unanswered and never processed (retryable), " +
         std::to_string(t[fate::unanswered_processed]) + " processed but unanswered, " +
         std::to_string(t[fate::broken]) + " wrong answers";
}

} // namespace

TEST(idle_grace, a_request_arriving_as_the_idle_grace_expires_is_answered_or_never_sent_on_loopback) {
  std::string why;
  auto t = requests_at_the_end_of_the_grace(false, why);
  figure("idle grace end, loopback: " + std::to_string(connections) + " requests around the " +
         std::to_string(grace.count()) + " ms grace: " + describe(t));
  EXPECT_TRUE(why.empty()) << why;
  EXPECT_EQ(t[fate::broken], 0);
  EXPECT_EQ(t[fate::unanswered_processed], 0) << "a processed request lost its response";
  // On loopback the FIN is seen the moment it is sent: a request written before it arrived
  // must have been answered.
  EXPECT_EQ(t[fate::unanswered_unprocessed], 0) << "a request sent before the FIN was dropped";
  EXPECT_EQ(t[fate::answered] + t[fate::closed_before_send], connections);
}

TEST(idle_grace, a_request_arriving_as_the_idle_grace_expires_through_a_20ms_path_is_answered_or_never_processed) {
  std::string why;
  auto t = requests_at_the_end_of_the_grace(true, why);
  figure("idle grace end, 20 ms each way: " + std::to_string(connections) + " requests around the " +
         std::to_string(grace.count()) + " ms grace: " + describe(t));
  EXPECT_TRUE(why.empty()) << why;
  EXPECT_EQ(t[fate::broken], 0);
  EXPECT_EQ(t[fate::unanswered_processed], 0) << "a processed request lost its response";
  EXPECT_EQ(t[fate::answered] + t[fate::closed_before_send] + t[fate::unanswered_unprocessed], connections);
}
