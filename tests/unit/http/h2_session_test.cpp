// The HTTP/2 session wrapper against nghttp2's own client session, in memory: what a client
// observes (statuses, bodies, RST_STREAM and GOAWAY codes, last stream ids) for requests,
// streamed responses under flow control, the two-phase GOAWAY, limits and abuse.
#include "http/h2_session.hpp"

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include "h2_test_client.hpp"

namespace {

using graceful::http::detail::h2_session;
using graceful::http::detail::h2_settings;
using graceful::http::detail::h2_stream;
using graceful::test::h2::client;
using graceful::test::h2::frame_type;
using graceful::test::h2::frames_of;
using namespace std::chrono_literals;

/// A server session and its owner's behaviour: `handler` answers each ready stream.
struct pair_fixture {
  explicit pair_fixture(h2_settings s = {}, std::vector<nghttp2_settings_entry> cs = {}, bool auto_window = true)
      : server(std::move(s)), c(std::move(cs), auto_window) {}

  h2_session server;
  client c;
  std::vector<h2_stream*> held;  // streams a "coroutine handler" still holds
  std::function<void(h2_stream&)> handler = [this](h2_stream& st) {
    if (st.error_status) {
      st.res.status = st.error_status;
      st.res.body = "error";
    } else {
      st.res.body = "hello " + std::string(st.req.path()) + " " + st.req.body();
    }
    server.respond(st, "Tue, 01 Dec 2026 00:00:00 GMT");
    server.release(st);
  };

  void dispatch() {
    for (auto* st : server.take_ready()) handler(*st);
  }
  /// Client to server once.
  bool c2s() {
    auto b = c.out();
    if (!b.empty()) server.feed(b.data(), b.size());
    dispatch();
    return !b.empty();
  }
  /// Server to client once.
  bool s2c() {
    std::string b;
    server.produce(b);
    if (b.empty()) return false;
    c.in(b);
    return true;
  }
  void pump() {
    for (int i = 0; i < 1000; ++i) {
      bool a = c2s();
      bool b = s2c();
      if (!a && !b) return;
    }
    FAIL() << "pump did not settle";
  }
};

TEST(H2Session, ServesRequestsWithTheirMethodPathQueryHeadersAndBody) {
  pair_fixture p;
  std::string method, query, host, custom;
  int version = 0;
  p.handler = [&](h2_stream& st) {
    method = st.req.method();
    query = st.req.query();
    host = st.req.header("Host").value_or("");
    custom = st.req.header("X-Custom").value_or("");
    version = st.req.version();
    st.res.body = "got " + st.req.body();
    st.res.add_header("X-Reply", "yes");
    st.res.add_header("Connection", "close");  // HTTP/1.1-only: must not reach the wire
    p.server.respond(st, "d");
    p.server.release(st);
  };
  auto id = p.c.request("POST", "/echo?a=1", "payload", {{"x-custom", "v"}});
  p.pump();
  auto& s = p.c.streams[id];
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.body, "got payload");
  EXPECT_EQ(s.headers["x-reply"], "yes");
  EXPECT_EQ(s.headers["content-length"], "11");
  EXPECT_EQ(s.headers.count("connection"), 0u);
  EXPECT_EQ(s.close_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(method, "POST");
  EXPECT_EQ(query, "a=1");
  EXPECT_EQ(host, "test.local");
  EXPECT_EQ(custom, "v");
  EXPECT_EQ(version, 20);
  EXPECT_EQ(p.server.streams(), 0u);
}

TEST(H2Session, ManyConcurrentStreamsOnOneConnection) {
  pair_fixture p;
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(p.c.request("GET", "/n" + std::to_string(i)));
  p.pump();
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(p.c.streams[ids[i]].status, 200);
    EXPECT_EQ(p.c.streams[ids[i]].body, "hello /n" + std::to_string(i) + " ");
  }
}

TEST(H2Session, AdvertisesMaxConcurrentStreamsAndHeaderListSize) {
  pair_fixture p;
  p.pump();
  EXPECT_EQ(nghttp2_session_get_remote_settings(p.c.ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 100u);
  EXPECT_EQ(nghttp2_session_get_remote_settings(p.c.ng, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE), 32u * 1024);
}

TEST(H2Session, HeadGetsHeadersWithoutBody) {
  pair_fixture p;
  auto id = p.c.request("HEAD", "/x");
  p.pump();
  EXPECT_EQ(p.c.streams[id].status, 200);
  EXPECT_EQ(p.c.streams[id].body, "");
  EXPECT_EQ(p.c.streams[id].close_code, NGHTTP2_NO_ERROR);
}

TEST(H2Session, StreamedResponseWaitsForTheClientsFlowControlWindow) {
  // The client grants 1000 bytes per stream and does not return window by itself.
  pair_fixture p({}, {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}}, false);
  h2_stream* held = nullptr;
  p.handler = [&](h2_stream& st) {
    held = &st;
    p.server.start_streaming(st, "d");
  };
  auto id = p.c.request("GET", "/stream");
  p.pump();
  ASSERT_NE(held, nullptr);
  std::string chunk(70 * 1024, 'x');
  ASSERT_TRUE(p.server.write(*held, chunk));
  p.pump();
  // Only the window went out; the rest waits in the stream, and the writer must wait.
  EXPECT_EQ(p.c.streams[id].body.size(), 1000u);
  EXPECT_TRUE(p.server.write_blocked(*held));
  // The client reads it and returns window: the rest flows.
  for (int i = 0; i < 200 && p.c.streams[id].body.size() < chunk.size(); ++i) {
    nghttp2_session_consume(p.c.ng, id, p.c.streams[id].body.size());
    nghttp2_session_consume_connection(p.c.ng, 0);
    p.pump();
    nghttp2_submit_window_update(p.c.ng, NGHTTP2_FLAG_NONE, id, 1000);
    nghttp2_submit_window_update(p.c.ng, NGHTTP2_FLAG_NONE, 0, 1000);
    p.pump();
  }
  EXPECT_EQ(p.c.streams[id].body, chunk);
  EXPECT_FALSE(p.server.write_blocked(*held));
  EXPECT_FALSE(p.c.streams[id].closed);  // not ended yet
  p.server.end(*held);
  p.server.release(*held);
  p.pump();
  EXPECT_TRUE(p.c.streams[id].closed);
  EXPECT_EQ(p.c.streams[id].close_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(p.server.streams(), 0u);
}

TEST(H2Session, ClientResetWhileHandlerRunsKeepsTheStreamUntilReleased) {
  pair_fixture p;
  h2_stream* held = nullptr;
  p.handler = [&](h2_stream& st) { held = &st; };
  auto id = p.c.request("GET", "/slow");
  p.pump();
  ASSERT_NE(held, nullptr);
  nghttp2_submit_rst_stream(p.c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  p.pump();
  EXPECT_TRUE(held->closed);
  EXPECT_EQ(held->req.path(), "/slow");  // still valid for the running handler
  EXPECT_FALSE(p.server.write(*held, "late"));
  EXPECT_EQ(p.server.streams(), 1u);
  p.server.release(*held);
  EXPECT_EQ(p.server.streams(), 0u);
}

// ---- two-phase shutdown ----

/// The RST_STREAM frames in `bytes`: (stream id, error code).
std::vector<std::pair<std::int32_t, std::uint32_t>> rsts_in(const std::string& bytes) {
  std::vector<std::pair<std::int32_t, std::uint32_t>> out;
  for (auto& f : frames_of(bytes)) {
    if (frame_type(f) != NGHTTP2_RST_STREAM || f.size() != 13) continue;
    auto* u = reinterpret_cast<const unsigned char*>(f.data());
    out.emplace_back(static_cast<std::int32_t>(((u[5] & 0x7fu) << 24) | (u[6] << 16) | (u[7] << 8) | u[8]),
                     (std::uint32_t(u[9]) << 24) | (u[10] << 16) | (u[11] << 8) | u[12]);
  }
  return out;
}

TEST(H2Session, ShutdownServesStreamsOpenedBeforeThePingAckAndRefusesLaterOnes) {
  pair_fixture p;
  std::vector<h2_stream*> held;
  p.handler = [&](h2_stream& st) { held.push_back(&st); };
  auto s1 = p.c.request("GET", "/a");
  p.pump();
  ASSERT_EQ(held.size(), 1u);
  // Three more streams the client sends before it hears of any shutdown; they are in flight.
  auto s3 = p.c.request("GET", "/b");
  auto s5 = p.c.request("GET", "/c");
  auto s7 = p.c.request("GET", "/d");
  auto in_flight = frames_of(p.c.out());
  ASSERT_EQ(in_flight.size(), 3u);

  p.server.begin_shutdown();
  std::string bytes;
  p.server.produce(bytes);
  auto frames = frames_of(bytes);
  ASSERT_EQ(frames.size(), 2u);
  // The PING follows the notice, so its ACK proves the client has read the notice.
  EXPECT_EQ(frame_type(frames[0]), NGHTTP2_GOAWAY);
  EXPECT_EQ(frame_type(frames[1]), NGHTTP2_PING);
  // Stream 3 arrives after the notice went out: it raced with it, and is served.
  p.server.feed(in_flight[0].data(), in_flight[0].size());
  p.dispatch();
  ASSERT_EQ(held.size(), 2u);
  // The client reads the notice and the PING; its ACK brings the final GOAWAY, last id 3.
  p.c.in(bytes);
  ASSERT_EQ(p.c.goaways.size(), 1u);
  EXPECT_EQ(p.c.goaways[0].first, 0x7fffffff);  // 2^31-1: the notice
  p.c2s();
  EXPECT_EQ(p.server.current_phase(), h2_session::phase::goaway_sent);
  EXPECT_EQ(p.server.last_stream_id(), s3);
  // Stream 5 arrives while the final GOAWAY is still queued, stream 7 once it is on the wire:
  // neither is processed, and each gets RST_STREAM(REFUSED_STREAM) on the wire, so the client
  // knows it may retry it elsewhere.
  p.server.feed(in_flight[1].data(), in_flight[1].size());
  p.dispatch();
  bytes.clear();
  p.server.produce(bytes);
  p.server.feed(in_flight[2].data(), in_flight[2].size());
  p.dispatch();
  EXPECT_EQ(held.size(), 2u);
  p.server.produce(bytes);
  EXPECT_EQ(rsts_in(bytes), (std::vector<std::pair<std::int32_t, std::uint32_t>>{{s5, NGHTTP2_REFUSED_STREAM},
                                                                                  {s7, NGHTTP2_REFUSED_STREAM}}));
  p.c.in(bytes);
  ASSERT_EQ(p.c.goaways.size(), 2u);
  EXPECT_EQ(p.c.goaways[1].first, s3);
  EXPECT_EQ(p.c.goaways[1].second, NGHTTP2_NO_ERROR);
  EXPECT_TRUE(p.c.streams[s5].closed);
  EXPECT_EQ(p.c.streams[s5].close_code, NGHTTP2_REFUSED_STREAM);
  EXPECT_EQ(p.c.streams[s7].close_code, NGHTTP2_REFUSED_STREAM);
  EXPECT_EQ(p.server.counters().streams_refused, 2u);
  EXPECT_FALSE(p.server.finished());  // two streams still in progress
  // The streams up to the last id complete.
  for (auto* st : held) {
    st->res.body = "done";
    p.server.respond(*st, "d");
    p.server.release(*st);
  }
  EXPECT_FALSE(p.server.finished());  // their responses are not out yet
  p.pump();
  EXPECT_EQ(p.c.streams[s1].status, 200);
  EXPECT_EQ(p.c.streams[s3].status, 200);
  EXPECT_EQ(p.c.streams[s1].body, "done");
  EXPECT_EQ(p.c.streams[s1].close_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(p.c.streams[s3].close_code, NGHTTP2_NO_ERROR);
  // The final GOAWAY is out and the last stream ended: the connection may close now.
  EXPECT_TRUE(p.server.finished());
  EXPECT_EQ(p.server.counters().goaways_sent, 2u);
}

TEST(H2Session, IdleConnectionGetsItsGoawayAtOnce) {
  pair_fixture p;
  p.pump();
  p.server.begin_shutdown();
  EXPECT_FALSE(p.server.finished());
  p.s2c();  // notice + PING, no grace period
  ASSERT_EQ(p.c.goaways.size(), 1u);
  // nghttp2's client (curl, h2load) is done once it has a GOAWAY and no stream: it closes,
  // which the owner sees as end of input.
  EXPECT_EQ(nghttp2_session_want_read(p.c.ng), 0);
  EXPECT_EQ(nghttp2_session_want_write(p.c.ng), 0);
  // A client that stays silent: the owner's cap sends the final GOAWAY; once it is out, the
  // connection may close (lingering): no stream is left, and no second round trip is awaited.
  p.server.final_goaway();
  EXPECT_EQ(p.server.last_stream_id(), 0);
  EXPECT_FALSE(p.server.finished());  // not sent yet
  std::string out;
  p.server.produce(out);
  EXPECT_EQ(frame_type(frames_of(out).back()), NGHTTP2_GOAWAY);  // no PING after it
  EXPECT_TRUE(p.server.finished());
}

TEST(H2Session, IdleConnectionWhoseClientAcksTheNoticeFinishesOnceTheFinalGoawayIsOut) {
  pair_fixture p;
  auto s1 = p.c.request("GET", "/a");
  p.pump();
  p.server.begin_shutdown();
  std::string bytes;
  p.server.produce(bytes);
  // A client that keeps reading (Go's) acknowledges the notice's PING (by hand here: nghttp2's
  // client, idle after a GOAWAY, reads nothing more).
  std::string ack;
  for (auto& f : frames_of(bytes))
    if (frame_type(f) == NGHTTP2_PING) ack = f;
  ASSERT_EQ(ack.size(), 17u);
  ack[4] = static_cast<char>(NGHTTP2_FLAG_ACK);
  p.server.feed(ack.data(), ack.size());
  EXPECT_TRUE(p.server.notice_acked());
  EXPECT_EQ(p.server.current_phase(), h2_session::phase::goaway_sent);
  EXPECT_EQ(p.server.last_stream_id(), s1);
  EXPECT_FALSE(p.server.finished());  // the final GOAWAY is not out yet
  bytes.clear();
  p.server.produce(bytes);
  auto frames = frames_of(bytes);
  ASSERT_EQ(frames.size(), 1u);  // the final GOAWAY, and no PING awaiting a second answer
  EXPECT_EQ(frame_type(frames[0]), NGHTTP2_GOAWAY);
  EXPECT_TRUE(p.server.finished());
}

TEST(H2Session, FinalGoawayWithoutPingAckWhenTheOwnerStopsWaiting) {
  pair_fixture p;
  auto s1 = p.c.request("GET", "/a");
  p.pump();
  p.server.begin_shutdown();
  std::string ignored;
  p.server.produce(ignored);  // the client never answers
  p.server.final_goaway();    // the owner's 1 s cap
  EXPECT_EQ(p.server.last_stream_id(), s1);
  EXPECT_FALSE(p.server.finished());
  p.server.produce(ignored);
  EXPECT_TRUE(p.server.finished());
  EXPECT_FALSE(p.server.notice_acked());
}

TEST(H2Session, ClientThatSentGoawayFinishesOnceItsStreamsEnd) {
  pair_fixture p;
  p.pump();
  nghttp2_submit_goaway(p.c.ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
  p.pump();
  EXPECT_TRUE(p.server.finished());
}

// ---- limits ----

TEST(H2Session, TooLargeHeaderListGets431) {
  h2_settings s;
  s.max_header_list_size = 1024;
  pair_fixture p(s);
  auto id = p.c.request("GET", "/", {}, {{"x-big", std::string(2000, 'a')}});
  p.pump();
  EXPECT_EQ(p.c.streams[id].status, 431);
}

TEST(H2Session, TooLargeBodyGets413AndTheUploadIsStopped) {
  h2_settings s;
  s.max_body_bytes = 1000;
  pair_fixture p(s);
  auto id = p.c.request("POST", "/echo", std::string(50000, 'b'));
  p.pump();
  EXPECT_EQ(p.c.streams[id].status, 413);
  EXPECT_TRUE(p.c.streams[id].closed);
  auto ok = p.c.request("GET", "/after");  // the connection survives
  p.pump();
  EXPECT_EQ(p.c.streams[ok].status, 200);
}

TEST(H2Session, SlowBodyGets408AndStalledResponseIsReset) {
  pair_fixture p({}, {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 10}}, false);
  // A request whose body never ends.
  std::vector<std::pair<std::string, std::string>> h = {
      {":method", "POST"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/upload"}};
  std::vector<nghttp2_nv> nv;
  for (auto& [k, v] : h)
    nv.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()), k.size(), v.size(), 0});
  auto up = nghttp2_submit_headers(p.c.ng, NGHTTP2_FLAG_NONE, -1, nullptr, nv.data(), nv.size(), nullptr);
  // A streamed response the client never grants window for.
  h2_stream* held = nullptr;
  p.handler = [&](h2_stream& st) {
    if (st.error_status) {
      st.res.status = st.error_status;
      p.server.respond(st, "d");
      p.server.release(st);
      return;
    }
    held = &st;
    p.server.start_streaming(st, "d");
    p.server.write(st, std::string(100, 'z'));
  };
  auto dl = p.c.request("GET", "/download");
  p.pump();
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(p.c.streams[dl].body.size(), 10u);
  auto later = graceful::http::detail::h2_clock::now() + 5s;
  p.server.expire(later, 10s, 2s, 2s);
  p.pump();
  EXPECT_EQ(p.c.streams[up].status, 408);
  EXPECT_TRUE(p.c.streams[dl].closed);
  EXPECT_EQ(p.c.streams[dl].close_code, NGHTTP2_CANCEL);
  p.server.release(*held);
  EXPECT_EQ(p.server.streams(), 0u);
}

// ---- abuse ----

TEST(H2Session, RapidResetIsCutOffWithGoaway) {
  pair_fixture p;
  p.pump();
  int handled = 0;
  p.handler = [&](h2_stream& st) {
    ++handled;
    p.server.release(st);
  };
  for (int i = 0; i < 400 && p.c.goaways.empty(); ++i) {
    // HEADERS and RST_STREAM arrive in one read, as an attacker sends them.
    auto id = p.c.request("GET", "/");
    auto b = p.c.out();
    nghttp2_submit_rst_stream(p.c.ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    b += p.c.out();
    p.server.feed(b.data(), b.size());
    p.dispatch();
    p.s2c();
  }
  ASSERT_FALSE(p.c.goaways.empty());
  EXPECT_EQ(p.c.goaways.back().second, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_NE(p.server.error().find("rapid reset"), std::string::npos);
  EXPECT_TRUE(p.server.finished());
  // No handler ran for a stream reset in the same read that opened it.
  EXPECT_EQ(handled, 0);
  EXPECT_GE(p.server.counters().streams_reset, 201u);  // the burst, plus what refilled meanwhile
  EXPECT_LE(p.server.counters().streams_reset, 260u);
}

TEST(H2Session, PingFloodIsCutOffWithGoaway) {
  pair_fixture p;
  p.pump();
  for (int i = 0; i < 200; ++i) nghttp2_submit_ping(p.c.ng, NGHTTP2_FLAG_NONE, nullptr);
  p.pump();
  ASSERT_FALSE(p.c.goaways.empty());
  EXPECT_EQ(p.c.goaways.back().second, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_EQ(p.server.error(), "PING flood");
}

TEST(H2Session, SettingsFloodIsCutOffWithGoaway) {
  pair_fixture p;
  p.pump();
  nghttp2_settings_entry e{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535};
  for (int i = 0; i < 200; ++i) nghttp2_submit_settings(p.c.ng, NGHTTP2_FLAG_NONE, &e, 1);
  p.pump();
  ASSERT_FALSE(p.c.goaways.empty());
  EXPECT_EQ(p.c.goaways.back().second, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_EQ(p.server.error(), "SETTINGS flood");
}

TEST(H2Session, HeaderBlockWithoutEndIsCutOffAtTheHeaderTimeout) {
  h2_session s(h2_settings{});
  std::string in(graceful::http::detail::h2_preface());
  in += std::string("\0\0\0\x04\0\0\0\0\0", 9);  // empty SETTINGS
  // HEADERS on stream 1, END_STREAM but no END_HEADERS: :method GET, :path /, :scheme http.
  in += std::string("\0\0\x03\x01\x01\0\0\0\x01\x82\x84\x86", 12);
  ASSERT_TRUE(s.feed(in.data(), in.size()));
  auto now = graceful::http::detail::h2_clock::now();
  EXPECT_NE(s.expire(now, 10s, 60s, 30s), graceful::http::detail::h2_clock::time_point::max());
  EXPECT_EQ(s.error(), "");
  s.expire(now + 11s, 10s, 60s, 30s);
  EXPECT_NE(s.error().find("header block without end"), std::string::npos);
  std::string out;
  s.produce(out);
  // The last frame sent is GOAWAY (type 7) with PROTOCOL_ERROR (1).
  auto pos = out.rfind(std::string("\0\0\x08\x07", 4));
  ASSERT_NE(pos, std::string::npos);
  EXPECT_EQ(static_cast<unsigned char>(out[pos + 9 + 7]), 1u);
  EXPECT_TRUE(s.finished());
}

TEST(H2Session, HeadersFrameCutMidPayloadIsCutOffAtTheHeaderTimeout) {
  // Found by fuzz/h2_server_fuzz: a HEADERS frame (END_HEADERS set) whose payload stops
  // arriving left a stream that could neither be answered nor end, so shutdown never
  // finished. The header timeout now covers it like a missing END_HEADERS.
  h2_session s(h2_settings{});
  std::string in(graceful::http::detail::h2_preface());
  in += std::string("\0\0\0\x04\0\0\0\0\0", 9);  // empty SETTINGS
  // HEADERS on stream 1, END_STREAM|END_HEADERS, 40 bytes announced, 3 sent.
  in += std::string("\0\0\x28\x01\x05\0\0\0\x01\x82\x84\x86", 12);
  ASSERT_TRUE(s.feed(in.data(), in.size()));
  EXPECT_EQ(s.streams(), 1u);
  s.begin_shutdown();
  s.final_goaway();
  auto now = graceful::http::detail::h2_clock::now();
  EXPECT_NE(s.expire(now, 10s, 60s, 30s), graceful::http::detail::h2_clock::time_point::max());
  EXPECT_EQ(s.error(), "");
  std::string out;
  s.produce(out);
  EXPECT_FALSE(s.finished());  // still within the header timeout
  s.expire(now + 11s, 10s, 60s, 30s);
  EXPECT_NE(s.error().find("header block without end"), std::string::npos);
  out.clear();
  s.produce(out);
  auto pos = out.rfind(std::string("\0\0\x08\x07", 4));  // GOAWAY, PROTOCOL_ERROR (1)
  ASSERT_NE(pos, std::string::npos);
  EXPECT_EQ(static_cast<unsigned char>(out[pos + 9 + 7]), 1u);
  EXPECT_TRUE(s.finished());
}

TEST(H2Session, GarbageIsAConnectionErrorNotACrash) {
  h2_session s(h2_settings{});
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_FALSE(s.feed(junk.data(), junk.size()));
  EXPECT_FALSE(s.error().empty());
  std::string out;
  s.produce(out);
  EXPECT_TRUE(s.finished());
}

// ---- h2c upgrade ----

TEST(H2Session, UpgradedStreamOneIsAnsweredOverHttp2) {
  // The client's side of RFC 7540 3.2: HTTP2-Settings carries its SETTINGS payload.
  nghttp2_settings_entry e{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100};
  std::uint8_t payload[16];
  auto n = nghttp2_pack_settings_payload(payload, sizeof payload, &e, 1);
  ASSERT_GT(n, 0);
  client c;
  ASSERT_EQ(nghttp2_session_upgrade2(c.ng, payload, static_cast<std::size_t>(n), 0, nullptr), 0);
  h2_session s(h2_settings{});
  h2_stream* st = s.upgrade({reinterpret_cast<const char*>(payload), static_cast<std::size_t>(n)}, false);
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->id, 1);
  st->res.body = "upgraded";
  s.respond(*st, "d");
  s.release(*st);
  std::string out;
  s.produce(out);
  c.in(out);
  EXPECT_EQ(c.streams[1].status, 200);
  EXPECT_EQ(c.streams[1].body, "upgraded");
}

TEST(H2Session, Base64urlDecodesHttp2SettingsValues) {
  std::string out;
  EXPECT_TRUE(graceful::http::detail::base64url_decode("AAMAAABkAAQAAP__", out));
  EXPECT_EQ(out, std::string("\x00\x03\x00\x00\x00\x64\x00\x04\x00\x00\xff\xff", 12));
  EXPECT_FALSE(graceful::http::detail::base64url_decode("a b", out));
}

} // namespace
