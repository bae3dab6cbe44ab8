// The server with real sockets: keep-alive, pipelining, 100-continue, chunked bodies, routing,
// timeouts, and a status plus a clean close (FIN, not RST) for each kind of bad input.
#include <graceful/http/server.hpp>

#include <graceful/core/unique_fd.hpp>

#include <atomic>
#include <cerrno>
#include <future>
#include <thread>

#include <spdlog/logger.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "http_test_server.hpp"

using namespace graceful::test;
using graceful::deadline;
namespace http = graceful::http;

TEST(http_server, serves_many_requests_on_one_keep_alive_connection) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send(get_request("/")));
    auto r = c.read_response(secs(5));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello");
    EXPECT_FALSE(r->closes());
    EXPECT_FALSE(r->header("date").empty());
  }
  EXPECT_EQ(ts.server->stats().accepted_connections, 1u);
}

TEST(http_server, every_response_head_names_the_server_and_dates_itself_whatever_its_status) {
  // A 200's status line, Server and Date come from a copy the loop keeps per second
  // (loop::stamp); other statuses are formatted per response. Both must read the same.
  auto check = [](http::options o, const std::string& server) {
    test_server ts(o);
    http_conn c(ts.port);
    ASSERT_TRUE(c.connected());
    for (const char* path : {"/", "/no-such-route", "/"}) {
      ASSERT_TRUE(c.send(get_request(path)));
      auto r = c.read_response(secs(5));
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, std::string_view(path) == "/" ? 200 : 404) << path;
      if (server.empty()) EXPECT_EQ(r->headers.count("server"), 0u) << path;
      else EXPECT_EQ(r->header("server"), server) << path;
      // RFC 9110 5.6.7 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
      auto date = r->header("date");
      EXPECT_EQ(date.size(), 29u) << date;
      EXPECT_TRUE(date.ends_with(" GMT")) << date;
    }
  };
  check(test_server::small_options(), "graceful");
  auto named = test_server::small_options();
  named.server_name = "edge-7";
  check(named, "edge-7");
  auto anonymous = test_server::small_options();
  anonymous.server_name.clear();
  check(anonymous, "");
}

TEST(http_server, spreads_a_burst_of_new_keep_alive_connections_over_its_loops) {
  // Both loops wait on one accept queue; 64 connections arriving together (a load tester
  // starting, clients reconnecting after an upgrade) used to go mostly, sometimes all, to
  // the loop awake first, leaving the other core idle.
  test_server s;  // 2 loops
  // The sockets first, then the 64 connects back to back, as fast as a load tester's.
  std::vector<graceful::unique_fd> fds;
  for (int i = 0; i < 64; ++i) fds.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(s.port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (auto& fd : fds) ::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to);  // EINPROGRESS
  const std::string req = get_request("/");
  int ok = 0;
  for (auto& fd : fds) {
    pollfd p{fd.get(), POLLOUT, 0};
    ::poll(&p, 1, 5000);
    ok += ::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  }
  EXPECT_EQ(ok, 64);
  // Each answered: the connection was accepted and served.
  int answered = 0;
  for (auto& fd : fds) {
    pollfd p{fd.get(), POLLIN, 0};
    char buf[512];
    answered += ::poll(&p, 1, 5000) == 1 && ::recv(fd.get(), buf, sizeof buf, 0) >= 12 && std::string_view(buf, 12) == "HTTP/1.1 200";
  }
  EXPECT_EQ(answered, 64);
  auto d = s.server->describe(secs(5));
  auto count = [&](const std::string& loop) {
    auto at = d.find(loop + ": ");
    return at == std::string::npos ? -1 : std::atoi(d.c_str() + at + loop.size() + 2);
  };
  int a = count("loop 0"), b = count("loop 1");
  EXPECT_EQ(a + b, 64) << d;
  EXPECT_GE(a, 4) << d;
  EXPECT_GE(b, 4) << d;
}

TEST(http_server, answers_pipelined_requests_in_order) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.send(get_request("/slow?ms=50") + get_request("/") +
                     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nping"));
  auto a = c.read_response(secs(5));
  auto b = c.read_response(secs(5));
  auto e = c.read_response(secs(5));
  ASSERT_TRUE(a && b && e);
  EXPECT_EQ(a->body, "slept");
  EXPECT_EQ(b->body, "hello");
  EXPECT_EQ(e->body, "ping");
}

TEST(http_server, a_response_larger_than_the_socket_buffers_reaches_a_late_reader_whole_and_the_connection_goes_on) {
  // A response is sent at once, and what the kernel does not take is written as the client
  // reads: every byte once, in order, then the next pipelined answer, then the next request.
  http::router routes;
  routes.get("/big", [](http::context& c) {
    c.response.body.resize(8u << 20);
    for (std::size_t i = 0; i < c.response.body.size(); ++i) c.response.body[i] = static_cast<char>('a' + i % 26);
  });
  routes.get("/", [](http::context& c) { c.response.body = "after"; });
  http::server s(std::move(routes));
  int port = s.listen("127.0.0.1:0").value();
  http_conn c(port);
  ASSERT_TRUE(c.send(get_request("/big") + get_request("/")));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server's write waits on us
  auto big = c.read_response(secs(20));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 200);
  ASSERT_EQ(big->body.size(), 8u << 20);
  bool in_order = true;
  for (std::size_t i = 0; i < big->body.size() && in_order; ++i) in_order = big->body[i] == static_cast<char>('a' + i % 26);
  EXPECT_TRUE(in_order);
  auto next = c.read_response(secs(5));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "after");
  ASSERT_TRUE(c.send(get_request("/")));
  auto third = c.read_response(secs(5));
  ASSERT_TRUE(third);
  EXPECT_EQ(third->body, "after");
  EXPECT_EQ(s.stats().accepted_connections, 1u);
}

TEST(http_server, sends_100_continue_before_reading_the_body) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  ASSERT_TRUE(c.wait_for("HTTP/1.1 100 Continue\r\n\r\n", secs(5)));
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response(secs(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
}

TEST(http_server, echoes_a_chunked_request_body) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"));
  ASSERT_TRUE(c.send("4\r\ndefg\r\n0\r\n\r\n"));
  auto r = c.read_response(secs(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "abcdefg");
}

TEST(http_server, routes_unknown_path_to_404_and_wrong_method_to_405_with_allow) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.send(get_request("/nope") + "DELETE /echo HTTP/1.1\r\nHost: a\r\n\r\n"));
  auto a = c.read_response(secs(5));
  auto b = c.read_response(secs(5));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 404);
  EXPECT_EQ(b->status, 405);
  EXPECT_EQ(b->header("allow"), "POST");
}

TEST(http_server, head_gets_the_get_headers_without_a_body) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + get_request("/")));
  // The HEAD response says Content-Length: 5 but carries no body: the next bytes are the
  // GET's status line.
  ASSERT_TRUE(c.wait_for("hello", secs(5)));
  auto& raw = c.leftover();
  auto second = raw.find("HTTP/1.1 200", 10);
  ASSERT_NE(second, std::string::npos);
  EXPECT_EQ(raw.substr(second - 4, 4), "\r\n\r\n");
  EXPECT_NE(raw.find("Content-Length: 5"), std::string::npos);
}

TEST(http_server, handler_exception_is_500_and_the_connection_keeps_working) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.send(get_request("/throw") + get_request("/")));
  auto a = c.read_response(secs(5));
  auto b = c.read_response(secs(5));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->status, 500);
  EXPECT_EQ(b->status, 200);
}

TEST(http_server, handler_throwing_a_non_std_exception_is_500_and_shutdown_still_completes) {
  // issue 11 item 4: `throw 42` used to escape catch (const std::exception&), skip the
  // connection's bookkeeping and terminate the loop thread.
  http::router r;
  r.get("/sync42", [](http::context&) { throw 42; });
  r.get("/async42", [](http::context&) -> boost::asio::awaitable<void> {
    throw 42;
    co_return;
  });
  r.get("/", [](http::context& c) { c.response.body = "ok"; });
  http::options o;
  o.threads = 1;
  http::server s(std::move(r), o);
  auto port = s.listen("127.0.0.1:0");
  ASSERT_TRUE(port);
  http_conn c(port.value());
  ASSERT_TRUE(c.send(get_request("/sync42") + get_request("/async42") + get_request("/")));
  auto a = c.read_response(secs(5));
  auto b = c.read_response(secs(5));
  auto d = c.read_response(secs(5));
  ASSERT_TRUE(a && b && d);
  EXPECT_EQ(a->status, 500);
  EXPECT_EQ(b->status, 500);
  EXPECT_EQ(d->status, 200);
  EXPECT_TRUE(s.shutdown(secs(5)));
  EXPECT_EQ(s.stats().open_connections, 0u);
}

TEST(http_server, http10_client_without_keep_alive_is_closed_after_its_response) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.send("GET / HTTP/1.0\r\n\r\n"));
  auto r = c.read_response(secs(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c.read_until_close(secs(5)), read_end::eof);
}

struct bad_input_case {
  const char* name;
  std::string bytes;
  int status;
};

class bad_input : public ::testing::TestWithParam<bad_input_case> {};

TEST_P(bad_input, gets_its_status_and_a_clean_close) {
  http::options o = test_server::small_options();
  o.max_header_bytes = 1024;
  o.max_body_bytes = 1024;
  test_server ts(o);
  http_conn c(ts.port);
  ASSERT_TRUE(c.send(GetParam().bytes));
  auto r = c.read_response(secs(5));
  ASSERT_TRUE(r) << "connection ended without a response";
  EXPECT_EQ(r->status, GetParam().status);
  EXPECT_TRUE(r->closes());
  EXPECT_FALSE(r->body.empty());
  // FIN, not RST: the bytes the server never read were drained by the lingering close.
  EXPECT_EQ(c.read_until_close(secs(5)), read_end::eof);
}

INSTANTIATE_TEST_SUITE_P(
    http_server, bad_input,
    ::testing::Values(
        bad_input_case{"malformed_400", "\x16\x03\x01 not http at all\r\n\r\n", 400},
        bad_input_case{"missing_host_400", "GET / HTTP/1.1\r\n\r\n", 400},
        bad_input_case{"header_too_large_431", "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(4000, 'x') + "\r\n\r\n", 431},
        bad_input_case{"body_too_large_413",
                       "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'b'), 413},
        bad_input_case{"unsupported_coding_501", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nxx", 501},
        bad_input_case{"http2_505", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(http_server, slow_header_is_cut_after_header_read_timeout) {
  http::options o = test_server::small_options();
  o.header_read_timeout = std::chrono::milliseconds(200);
  test_server ts(o);
  http_conn c(ts.port);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHo"));
  EXPECT_EQ(c.read_until_close(secs(5)), read_end::eof);
}

TEST(http_server, idle_keep_alive_connection_is_closed_after_idle_timeout) {
  http::options o = test_server::small_options();
  o.idle_timeout = std::chrono::milliseconds(200);
  test_server ts(o);
  http_conn c(ts.port);
  ASSERT_TRUE(c.send(get_request("/")));
  ASSERT_TRUE(c.read_response(secs(5)));
  EXPECT_EQ(c.read_until_close(secs(5)), read_end::eof);
}

TEST(http_server, adopt_rejects_a_socket_that_is_not_listening) {
  test_server ts;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto r = ts.server->adopt(fd);  // takes ownership even on error
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), http::errc::not_a_listener);
  EXPECT_EQ(ts.server->listen("nonsense").error(), graceful::errc::address_missing_port);
  EXPECT_EQ(ts.server->listen("unix:/tmp/graceful-http-unix.sock").error(), http::errc::bad_address);
}

TEST(http_server, describe_lists_in_flight_requests_with_the_clients_address) {
  test_server ts;
  http_conn c(ts.port);
  ASSERT_TRUE(c.send(get_request("/slow?ms=500")));
  ASSERT_TRUE(ts.wait_in_flight(1));
  auto text = ts.server->describe(secs(2));
  EXPECT_NE(text.find("request=\"GET /slow\""), std::string::npos) << text;
  EXPECT_NE(text.find("state=handling"), std::string::npos) << text;
  // The line names the client, by the address and port it connects from.
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ASSERT_EQ(::getsockname(c.fd(), reinterpret_cast<sockaddr*>(&local), &len), 0);
  EXPECT_NE(text.find("conn 127.0.0.1:" + std::to_string(ntohs(local.sin_port)) + " "), std::string::npos) << text;
}

TEST(http_server, routes_are_fixed_once_serving) {
  test_server ts;
  EXPECT_THROW(ts.server->routes(), std::logic_error);
}

TEST(http_server, counts_responses_by_status) {
  test_server ts;
  ASSERT_TRUE(http_get(ts.port, "/"));
  ASSERT_TRUE(http_get(ts.port, "/nope"));
  auto st = ts.server->stats();
  std::map<int, std::uint64_t> m(st.responses_by_status.begin(), st.responses_by_status.end());
  EXPECT_EQ(m[200], 1u);
  EXPECT_EQ(m[404], 1u);
}

TEST(http_server, beyond_max_connections_clients_wait_in_the_backlog_instead_of_being_refused) {
  http::options o = test_server::small_options();
  o.threads = 1;
  o.max_connections = 1;
  test_server ts(o);
  auto first = std::make_unique<http_conn>(ts.port);
  ASSERT_TRUE(first->send(get_request("/")));
  ASSERT_TRUE(first->read_response(secs(5)));
  http_conn second(ts.port);  // the kernel completes the handshake; the server does not accept yet
  ASSERT_TRUE(second.connected());
  ASSERT_TRUE(second.send(get_request("/")));
  EXPECT_FALSE(second.read_response(deadline::after(std::chrono::milliseconds(200))));
  EXPECT_EQ(second.last_end(), read_end::timeout);
  first.reset();  // a slot frees up: the waiting client is accepted and answered
  auto r = second.read_response(secs(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

namespace {

bool connect_refused(int port) {
  http_conn c(port);
  return !c.connected() && c.errno_value() == ECONNREFUSED;
}

http::options one_loop() {
  http::options o;
  o.threads = 1;
  return o;
}

} // namespace

TEST(http_server, adopt_that_timed_out_never_serves_the_socket_later) {
  loop_blocker br;
  http::server s(br.routes(), one_loop());
  int port = s.listen("127.0.0.1:0").value();
  http_conn holder(port);
  ASSERT_TRUE(holder.send(get_request("/block")));
  ASSERT_TRUE(eventually([&] { return br.blocked.load(); }, secs(5)));
  auto fd = http::open_listener("127.0.0.1:0");
  ASSERT_TRUE(fd);
  int late_port = http::local_port(fd.value()).value();
  auto r = s.adopt(fd.value(), graceful::deadline::after(std::chrono::milliseconds(200)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::timed_out);
  br.release.set_value();
  ASSERT_TRUE(holder.read_response(secs(10)));
  // The loop got to the adopt after it had given up: it must close the socket, not serve it
  // (a caller told "not served" may well have reused the port for something else).
  EXPECT_TRUE(eventually([&] { return connect_refused(late_port); }, secs(5)));
  auto still = http_get(port, "/");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, 200);
}

TEST(http_server, stop_accepting_refuses_new_clients_and_keeps_serving_open_connections) {
  test_server ts(one_loop());
  http_conn open(ts.port);
  ASSERT_TRUE(open.send(get_request("/")));
  ASSERT_TRUE(open.read_response(secs(5)));
  ASSERT_TRUE(ts.server->stop_accepting(secs(5)));
  EXPECT_TRUE(connect_refused(ts.port));
  EXPECT_FALSE(ts.server->stats().shutting_down);
  // The open keep-alive connection is served as before, and stays open.
  ASSERT_TRUE(open.send(get_request("/")));
  auto r = open.read_response(secs(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->closes());
  EXPECT_EQ(ts.server->listen("127.0.0.1:0").error(), http::errc::server_closed);
  EXPECT_TRUE(ts.server->shutdown(secs(10)));
}

TEST(http_server, an_exception_escaping_the_event_loop_is_logged_and_the_loop_keeps_serving) {
  // Issue 11 item 4: work a handler posts to its loop that throws escapes the loop's run();
  // it must not terminate the process silently.
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  auto o = one_loop();
  o.logger = std::make_shared<spdlog::logger>("loop-exception-test", sink);
  http::router r;
  r.get("/", [](http::context& c) { c.response.body = "hello"; });
  r.get("/post-throw", [](http::context& c) -> boost::asio::awaitable<void> {
    boost::asio::post(co_await boost::asio::this_coro::executor, [] { throw std::runtime_error("posted boom"); });
    c.response.body = "posted";
  });
  http::server s(std::move(r), o);
  int port = s.listen("127.0.0.1:0").value();
  auto first = http_get(port, "/post-throw");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  auto logged = [&] {
    for (auto& line : sink->last_formatted())
      if (line.find("exception escaped the event loop: posted boom") != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(eventually(logged, secs(5)));
  auto after = http_get(port, "/");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->body, "hello");
  EXPECT_TRUE(s.shutdown(secs(10)));
}
