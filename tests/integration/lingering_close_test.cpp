// Lingering close (issue 13 item 4): after a connection's last response, when the client did
// not ask for the close, the server shuts its write side and drains input, so unread bytes
// never make the kernel send a RST that destroys the response; but it closes as soon as the
// kernel says the client has the whole response and nothing more is arriving, instead of
// waiting out linger_timeout for a client that keeps its socket open. A client that asked for
// the close is closed at once (issue 13 item 2). No timing is asserted: linger_timeout is set far above every wait here, so
// a server that waits it out fails, however slow the machine.
#include <chrono>
#include <csignal>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "delay_proxy.hpp"
#include "graceful_server.hpp"
#include "http_client.hpp"
#include "http_test_server.hpp"
#include "process.hpp"

namespace {

using namespace std::chrono_literals;
using graceful::deadline;
namespace gt = graceful::test;
namespace http = graceful::http;

/// The client socket's TCP state (TCP_ESTABLISHED, TCP_CLOSE_WAIT once the server's FIN is
/// in, TCP_CLOSE once a RST came), -1 when it cannot be read.
int tcp_state_of(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return -1;
  return ti.tcpi_state;
}

/// Bytes the client sent that the server's kernel has not acknowledged (SIOCOUTQ).
int unacked_of(int fd) {
  int n = -1;
  return ::ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

} // namespace

TEST(lingering_close, a_client_that_keeps_its_socket_open_does_not_hold_the_exit_for_linger_timeout) {
  // 30 s of lingering allowed; the exit is waited for 15 s while the client holds its socket.
  // The request is in flight at SIGTERM, so its answer carries the close the client did not
  // ask for: the one that lingers.
  gt::server_proc s({"--linger-timeout", "30s"});
  gt::http_conn c(s.port);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(gt::get_request("/slow?ms=500")));
  // In flight: /metrics counts itself, so 2.
  ASSERT_TRUE(gt::eventually(
      [&] {
        auto m = gt::http_get(s.port, "/metrics");
        return m && m->body.find("\ngraceful_http_in_flight_requests 2\n") != std::string::npos;
      },
      deadline::after(10s)));
  s.proc->signal(SIGTERM);
  auto r = c.read_response(deadline::after(10s));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->closes());
  // The client read its response and keeps the socket open: it neither closes nor sends.
  EXPECT_EQ(s.proc->wait(deadline::after(15s)), 0) << "still lingering on a delivered response?\n"
                                                   << s.proc->output();
  // The server's end closed with a FIN, never a RST (after a FIN a RST is invisible to
  // read(); it shows in the socket's state).
  EXPECT_EQ(tcp_state_of(c.fd()), TCP_CLOSE_WAIT);
  EXPECT_EQ(c.read_until_close(deadline::after(5s)), gt::read_end::eof);
}

namespace {

/// A server whose "/" answers with Connection: close although the client did not ask for it:
/// the close the client cannot foresee, which is the one lingering protects.
struct closing_server {
  std::unique_ptr<http::server> server;
  int port = 0;
  explicit closing_server(http::options o) {
    http::router r;
    r.get("/", [](http::context& c) {
      c.response.body = "hello";
      c.response.add_header("Connection", "close");
    });
    server = std::make_unique<http::server>(std::move(r), o);
    auto p = server->listen("127.0.0.1:0");
    EXPECT_TRUE(p) << p.error().message();
    port = p ? p.value() : 0;
  }
};

} // namespace

TEST(lingering_close, a_request_pipelined_after_the_servers_fin_is_drained_not_answered_with_a_reset) {
  http::options o = gt::test_server::small_options();
  // The quiet time is the window for input sent after the FIN: made long here so that it
  // outlasts however late this thread runs; linger_timeout longer still.
  o.linger_quiet = 30s;
  o.linger_timeout = 60s;
  closing_server ts(o);
  gt::http_conn c(ts.port);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(gt::get_request("/")));
  // The response and the FIN are in the client's kernel (it reads nothing yet)...
  ASSERT_TRUE(gt::eventually([&] { return tcp_state_of(c.fd()) == TCP_CLOSE_WAIT; }, deadline::after(10s)));
  // ...when the client, which did not know the server would close, pipelines another
  // request, and waits until the server's kernel has acknowledged it, or answered it with a RST.
  ASSERT_TRUE(c.send(gt::get_request("/")));
  ASSERT_TRUE(gt::eventually([&] { return unacked_of(c.fd()) == 0 || tcp_state_of(c.fd()) == TCP_CLOSE; },
                             deadline::after(10s)));
  // A server that had closed answered those bytes with a RST (state CLOSE); one that
  // lingers read and discarded them.
  EXPECT_EQ(tcp_state_of(c.fd()), TCP_CLOSE_WAIT);
  auto r = c.read_response(deadline::after(10s));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  EXPECT_TRUE(r->closes());
  EXPECT_EQ(tcp_state_of(c.fd()), TCP_CLOSE_WAIT);
  EXPECT_EQ(ts.server->stats().open_connections, 1u);  // still draining: the quiet time is long
}

TEST(lingering_close, a_client_that_asked_for_the_close_is_closed_at_once_with_a_fin) {
  // A client that sends Connection: close sends nothing after that request (RFC 9112 9.6):
  // with nothing unread the server closes at once (no lingering: nginx's rule too), so the
  // connection is gone while the client still holds its socket, although the quiet time
  // would keep a lingering close open for 30 s. The client gets the response and a FIN.
  http::options o = gt::test_server::small_options();
  o.linger_quiet = 30s;
  o.linger_timeout = 60s;
  gt::test_server ts(o);
  gt::http_conn c(ts.port);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(gt::get_request("/", "Connection: close\r\n")));
  auto r = c.read_response(deadline::after(10s));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  EXPECT_TRUE(r->closes());
  EXPECT_TRUE(gt::eventually([&] { return ts.server->stats().open_connections == 0; }, deadline::after(10s)))
      << "still lingering for a client that asked for the close";
  EXPECT_TRUE(gt::eventually([&] { return tcp_state_of(c.fd()) == TCP_CLOSE_WAIT; }, deadline::after(10s)));
  EXPECT_EQ(c.read_until_close(deadline::after(5s)), gt::read_end::eof);
}

TEST(lingering_close, a_client_behind_a_slow_path_gets_its_whole_response_then_a_fin) {
  // Default linger settings. The client sends a request with Connection: close and, right
  // behind it, another one with a 128 KiB body that the server never reads as a request: it is
  // still arriving when the first response is done, so only the lingering close's drain keeps
  // the kernel from resetting the connection under the response still on its 20 ms way.
  gt::test_server ts;
  // A 16 KiB window makes it a ~800 KB/s path: most of the 64 KiB response is still in the
  // server's send queue when it is done with the connection, which a close with unread input
  // (a RST) would destroy; loopback alone would have delivered it all at once.
  gt::delay_proxy_options po;
  po.upstream_port = ts.port;
  po.delay = 20ms;
  po.window = 16 * 1024;
  gt::delay_proxy proxy(po);
  ASSERT_TRUE(proxy.ok()) << proxy.error().message();
  gt::http_conn c(proxy.port());
  ASSERT_TRUE(c.connected());
  const std::string body(64 * 1024, 'b');
  auto post = [](const std::string& b, std::string_view extra) {
    return "POST /echo HTTP/1.1\r\nHost: a\r\n" + std::string(extra) + "Content-Length: " +
           std::to_string(b.size()) + "\r\n\r\n" + b;
  };
  ASSERT_TRUE(c.send(post(body, "Connection: close\r\n") + post(std::string(128 * 1024, 'p'), "")));
  auto r = c.read_response(deadline::after(20s));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.size(), body.size());
  EXPECT_TRUE(r->body == body);
  EXPECT_TRUE(r->closes());
  EXPECT_EQ(c.read_until_close(deadline::after(20s)), gt::read_end::eof);
}
