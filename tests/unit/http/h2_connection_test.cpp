// HTTP/2 connections of a real server over loopback (src/http/h2_connection): the two-phase
// GOAWAY as a client on a socket sees it, including the race it exists for (a stream the
// client opens before it has read the notice), the refusal of a stream that arrives after the
// final GOAWAY, what server_stats (hence /metrics) counts for it, and floods cut off.
#include <graceful/http/server.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "h2_test_client.hpp"
#include "http_test_server.hpp"

using namespace graceful::test;
using graceful::deadline;
namespace http = graceful::http;

namespace {

constexpr std::int32_t notice_id = 0x7fffffff;  // the shutdown notice's last_stream_id
using goaway = std::pair<std::int32_t, std::uint32_t>;

http::options h2_options() {
  http::options o;
  o.threads = 1;
  // The client below decides when it has read a frame (it holds bytes back): the server's
  // caps on the PING round trips must not decide for it, however loaded the machine is.
  o.http2_ping_timeout = std::chrono::seconds(30);
  o.linger_timeout = std::chrono::seconds(30);
  return o;
}

int type_of(const std::string& f) { return h2::frame_type(f); }
std::int32_t stream_of(const std::string& f) {
  auto* u = reinterpret_cast<const unsigned char*>(f.data());
  return static_cast<std::int32_t>(((u[5] & 0x7fu) << 24) | (u[6] << 16) | (u[7] << 8) | u[8]);
}
std::uint32_t u32_at(const std::string& f, std::size_t at) {
  auto* u = reinterpret_cast<const unsigned char*>(f.data() + at);
  return (std::uint32_t(u[0]) << 24) | (u[1] << 16) | (u[2] << 8) | u[3];
}

/// nghttp2's client session on a real socket. Received bytes wait in `held` until
/// deliver(): until then the client has not "read" them, which is how a test opens a stream
/// that crosses a GOAWAY in flight.
struct h2_conn {
  http_conn sock;
  h2::client c;
  std::string held;
  read_end end = read_end::data;

  explicit h2_conn(int port) : sock(port) {}

  void send() {
    auto o = c.out();
    if (!o.empty()) sock.send(o);
  }
  /// One recv (until `d`) into `held`. False on EOF, RST or timeout (`end` says which).
  bool receive(deadline d) {
    for (;;) {
      pollfd p{sock.fd(), POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d.remaining()).count();
      if (left <= 0) {
        end = read_end::timeout;
        return false;
      }
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      char buf[16384];
      auto n = ::recv(sock.fd(), buf, sizeof buf, 0);
      if (n > 0) {
        held.append(buf, static_cast<std::size_t>(n));
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      end = n == 0 ? read_end::eof : errno == ECONNRESET ? read_end::reset : read_end::error;
      return false;
    }
  }
  /// The client reads what was held, and sends what it has to say (e.g. PING ACKs).
  void deliver() {
    if (!held.empty()) c.in(held);
    held.clear();
    send();
  }
  /// Receives (holding) until some whole frame received satisfies `pred`.
  bool hold_until(const std::function<bool(const std::string&)>& pred, deadline d) {
    for (;;) {
      for (auto& f : h2::frames_of(held))
        if (pred(f)) return true;
      if (!receive(d)) return false;
    }
  }
  /// Sends and delivers until `done()` (true) or the connection ends (false, see `end`).
  bool run_until(const std::function<bool()>& done, deadline d) {
    for (;;) {
      send();
      if (done()) return true;
      if (!receive(d)) return false;
      deliver();
    }
  }
};

std::future<graceful::result<void>> shutdown_async(test_server& ts, deadline d) {
  return std::async(std::launch::async, [&ts, d] { return ts.server->shutdown(d); });
}

} // namespace

TEST(h2_connection, idle_connection_gets_the_notice_then_the_final_goaway_and_a_fin_once_the_client_read_the_notice) {
  test_server ts(h2_options());
  h2_conn h(ts.port);
  ASSERT_TRUE(h.sock.connected());
  auto id = h.c.request("GET", "/");
  ASSERT_TRUE(h.run_until([&] { return h.c.streams[id].closed; }, secs(10)));
  EXPECT_EQ(h.c.streams[id].status, 200);
  EXPECT_EQ(h.c.streams[id].body, "hello");

  auto done = shutdown_async(ts, secs(60));
  // Idle: no grace to guess; the notice and its PING come at once. nghttp2's own client stops
  // reading once it is idle after a GOAWAY (curl and h2load then close); a client that keeps
  // reading (Go's) acknowledges the PING, done here by hand. The final GOAWAY follows, and
  // with no stream left the FIN right after it: the ack caps (30 s here) play no part.
  std::string ping;
  ASSERT_TRUE(h.hold_until([&](const std::string& f) {
    if (type_of(f) == NGHTTP2_PING && f.size() == 17 && (f[4] & NGHTTP2_FLAG_ACK) == 0) ping = f;
    return !ping.empty();
  }, secs(20))) << "no shutdown notice PING";
  std::string ack = ping;
  ack[4] = static_cast<char>(NGHTTP2_FLAG_ACK);
  ASSERT_TRUE(h.sock.send(ack));
  while (h.receive(secs(20))) {
  }
  EXPECT_EQ(h.end, read_end::eof);  // a FIN, never a RST over the frames already sent
  std::vector<goaway> seen;
  int pings = 0;
  for (auto& f : h2::frames_of(h.held)) {
    if (type_of(f) == NGHTTP2_GOAWAY) seen.emplace_back(static_cast<std::int32_t>(u32_at(f, 9)), u32_at(f, 13));
    if (type_of(f) == NGHTTP2_PING && (f[4] & NGHTTP2_FLAG_ACK) == 0) ++pings;
  }
  EXPECT_EQ(seen, (std::vector<goaway>{{notice_id, NGHTTP2_NO_ERROR}, {id, NGHTTP2_NO_ERROR}}));
  EXPECT_EQ(pings, 1);  // one round trip: nothing after the final GOAWAY waits for an answer
  h.sock.read_until_close(secs(1));  // closes our side, which ends the server's lingering close
  auto r = done.get();
  EXPECT_TRUE(r) << r.error().message();

  auto s = ts.server->stats();
  EXPECT_EQ(s.http2_connections, 1u);
  EXPECT_EQ(s.http2_streams, 1u);
  EXPECT_EQ(s.http2_goaways_sent, 2u);
  EXPECT_EQ(s.http2_streams_refused, 0u);
  EXPECT_EQ(s.http2_streams_by_status, (std::vector<std::pair<int, std::uint64_t>>{{200, 1}}));
}

TEST(h2_connection, stream_opened_before_the_notice_was_read_is_served_and_one_after_the_final_goaway_is_refused) {
  test_server ts(h2_options());
  h2_conn h(ts.port);
  ASSERT_TRUE(h.sock.connected());
  auto first = h.c.request("GET", "/");
  ASSERT_TRUE(h.run_until([&] { return h.c.streams[first].closed; }, secs(10)));

  auto done = shutdown_async(ts, secs(60));
  // The notice and its PING are on the wire; the client has not read them yet, so it opens a
  // stream as a client does at that instant (a one-phase GOAWAY would lose this one). Its
  // body comes only at the end, so it stays open on the server for as long as the test
  // needs, whatever the machine's speed.
  std::string ping1;
  ASSERT_TRUE(h.hold_until([&](const std::string& f) {
    if (type_of(f) == NGHTTP2_PING && f.size() == 17 && (f[4] & NGHTTP2_FLAG_ACK) == 0) ping1 = f;
    return !ping1.empty();
  }, secs(20))) << "no shutdown PING";
  auto racing = h.c.open_request("POST", "/echo");
  h.send();
  // The notice's PING ACK, sent by hand: the TCP stream is in order, so the server knows
  // every stream opened before it has arrived (stream `racing` included).
  std::string ack = ping1;
  ack[4] = static_cast<char>(NGHTTP2_FLAG_ACK);
  ASSERT_TRUE(h.sock.send(ack));
  // The final GOAWAY names `racing`; still unread, so the client opens one more stream.
  ASSERT_TRUE(h.hold_until([&](const std::string& f) {
    return type_of(f) == NGHTTP2_GOAWAY && stream_of(f) == 0 && u32_at(f, 9) == static_cast<std::uint32_t>(racing);
  }, secs(20))) << "no final GOAWAY with last_stream_id " << racing;
  auto late = h.c.request("GET", "/");
  h.send();
  ASSERT_TRUE(h.hold_until([&](const std::string& f) {
    return type_of(f) == NGHTTP2_RST_STREAM && stream_of(f) == late && u32_at(f, 9) == NGHTTP2_REFUSED_STREAM;
  }, secs(20))) << "stream " << late << " above the final GOAWAY was not refused";

  // Now the racing stream's body: it is answered, and then the connection ends with a FIN.
  ASSERT_TRUE(h.c.end_request(racing, "raced"));
  h.deliver();
  EXPECT_FALSE(h.run_until([] { return false; }, secs(20)));
  EXPECT_EQ(h.end, read_end::eof);
  h.sock.read_until_close(secs(1));
  EXPECT_EQ(h.c.streams[racing].status, 200);
  EXPECT_EQ(h.c.streams[racing].body, "raced");
  EXPECT_EQ(h.c.streams[racing].close_code, NGHTTP2_NO_ERROR);
  EXPECT_TRUE(h.c.streams[late].closed);
  EXPECT_EQ(h.c.streams[late].close_code, NGHTTP2_REFUSED_STREAM);  // safe to retry
  EXPECT_EQ(h.c.streams[late].status, 0);                            // never answered
  EXPECT_EQ(h.c.goaways, (std::vector<goaway>{{notice_id, NGHTTP2_NO_ERROR}, {racing, NGHTTP2_NO_ERROR}}));
  auto r = done.get();
  EXPECT_TRUE(r) << r.error().message();

  auto s = ts.server->stats();
  EXPECT_EQ(s.http2_goaways_sent, 2u);
  EXPECT_EQ(s.http2_streams_refused, 1u);
  EXPECT_EQ(s.http2_streams_by_status, (std::vector<std::pair<int, std::uint64_t>>{{200, 2}}));
}

// Abuse on a real socket: a client that resets streams in a loop (rapid reset,
// CVE-2023-44487), floods PING or floods SETTINGS is cut off with GOAWAY(ENHANCE_YOUR_CALM),
// the server logs a warning naming the abuse, and the connection ends (the server's FIN).
struct flood_case {
  const char* name;
  const char* logged;
  std::function<void(h2_conn&)> one;  // one unit of the flood, sent
  friend void PrintTo(const flood_case& f, std::ostream* os) { *os << f.name; }
};

class h2_flood : public ::testing::TestWithParam<flood_case> {};

TEST_P(h2_flood, is_cut_off_with_goaway_enhance_your_calm_and_a_warning) {
  // Read under the sink's own lock (last_formatted): the server's threads write meanwhile.
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  auto o = h2_options();
  o.logger = std::make_shared<spdlog::logger>("h2-flood", sink);
  test_server ts(o);
  h2_conn h(ts.port);
  ASSERT_TRUE(h.sock.connected());
  // Bounded: far beyond each limit (200 resets / 50 PINGs or SETTINGS in a burst).
  for (int i = 0; i < 2000 && h.c.goaways.empty(); ++i) {
    GetParam().one(h);
    if (i % 50 == 49) {
      // Read what came back (ACKs, maybe the GOAWAY) without waiting for more.
      pollfd p{h.sock.fd(), POLLIN, 0};
      while (::poll(&p, 1, 0) > 0 && h.receive(secs(1))) h.deliver();
      if (h.end != read_end::data) break;
    }
  }
  // The GOAWAY, then the end of the connection.
  EXPECT_FALSE(h.run_until([] { return false; }, secs(20)));
  EXPECT_NE(h.end, read_end::timeout);
  ASSERT_FALSE(h.c.goaways.empty());
  EXPECT_EQ(h.c.goaways.back().second, NGHTTP2_ENHANCE_YOUR_CALM);
  auto logged = [&] {
    std::string all;
    for (auto& line : sink->last_formatted()) all += line;
    return all;
  };
  EXPECT_TRUE(eventually([&] { return logged().find(GetParam().logged) != std::string::npos; }, secs(10))) << logged();
}

INSTANTIATE_TEST_SUITE_P(
    abuse, h2_flood,
    ::testing::Values(
        flood_case{"rapid_reset", "rapid reset",
                   [](h2_conn& h) {
                     // HEADERS out first: nghttp2's client drops a RST for a stream not sent yet.
                     auto id = h.c.request("GET", "/");
                     h.send();
                     nghttp2_submit_rst_stream(h.c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
                     h.send();
                   }},
        flood_case{"ping_flood", "PING flood",
                   [](h2_conn& h) {
                     nghttp2_submit_ping(h.c.ng, NGHTTP2_FLAG_NONE, nullptr);
                     h.send();
                   }},
        flood_case{"settings_flood", "SETTINGS flood",
                   [](h2_conn& h) {
                     nghttp2_settings_entry e{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535};
                     nghttp2_submit_settings(h.c.ng, NGHTTP2_FLAG_NONE, &e, 1);
                     h.send();
                   }}),
    [](const auto& p) { return std::string(p.param.name); });
