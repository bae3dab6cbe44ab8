// libFuzzer target: arbitrary bytes sent over a real loopback connection to an in-process
// graceful::http::server, so the whole per-connection state machine runs on them: the
// parser, pipelining, Expect: 100-continue, chunked bodies, routing (404/405/HEAD), error
// responses and the lingering close. The client sends the input, half-closes, and reads
// until the server closes.
//
// HTTP/2 is on (the default), as in graceful-server: an input that starts with the HTTP/2
// connection preface, or asks for `Upgrade: h2c`, runs the HTTP/2 connection (h2_connection:
// hand-over from HTTP/1.1, reader/writer/ticker, lingering close) on the same listener.
//
// Properties checked beyond "no crash / no sanitizer report":
//  - the server always ends the connection after our FIN (no hang: 5 s cap, then abort);
//  - it ends it with a FIN, never a RST (a RST could destroy a response in flight);
//  - every HTTP/1.1 response starts with "HTTP/1.1 " and a three-digit status; an input that
//    starts with the preface gets HTTP/2 frames, the first being the server's SETTINGS.

#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <graceful/http/server.hpp>

namespace {

namespace http = graceful::http;
using namespace std::chrono_literals;

std::uint16_t g_port = 0;

void fail(const char* why) {
  std::fprintf(stderr, "http_server_fuzz: %s (errno %d)\n", why, errno);
  std::abort();
}

http::server& the_server() {
  static http::server* s = [] {
    http::router r;
    r.get("/", [](http::context& c) { c.response.body = "hello\n"; });
    r.post("/echo", [](http::context& c) { c.response.body = c.request.body(); });
    r.get("/stream", [](http::context& c) -> boost::asio::awaitable<void> {
      for (int i = 0; i < 3; ++i) {
        bool ok = co_await c.write_chunk("chunk\n");
        if (!ok) co_return;
      }
    });
    http::options o;
    o.threads = 1;
    // Small limits and timeouts so the fuzzer reaches 413/431/408 quickly and never waits.
    o.max_header_bytes = 1024;
    o.max_body_bytes = 2048;
    o.header_read_timeout = 1s;
    o.body_read_timeout = 1s;
    o.linger_timeout = 200ms;
    o.server_name = "fuzz";
    auto* srv = new http::server(std::move(r), o);  // lives until exit, like a real server
    auto port = srv->listen("127.0.0.1:0");
    if (!port) fail("listen");
    g_port = port.value();
    return srv;
  }();
  return *s;
}

// Connects, sends everything, half-closes, reads to the end. Returns the bytes received.
std::string exchange(const std::uint8_t* data, std::size_t size) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(g_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    // libFuzzer's -timeout alarm (SIGALRM, every few seconds) can interrupt connect(); the
    // attempt then goes on in the kernel (connect(2): EINTR), so wait for it to finish
    // rather than fail the input.
    if (errno != EINTR) fail("connect");
    pollfd p{fd, POLLOUT, 0};
    while (::poll(&p, 1, 5000) < 0 && errno == EINTR) {
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      errno = err;
      fail("connect");
    }
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::size_t off = 0;
  std::string got;
  char buf[16384];
  bool write_done = false, reset = false;
  auto until = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    if (!write_done && off == size) {
      ::shutdown(fd, SHUT_WR);
      write_done = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (write_done ? 0 : POLLOUT)), 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) fail("server did not close the connection within 5 s of the client's FIN");
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("poll");
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        got.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) break;  // FIN
      if (errno == EINTR || errno == EAGAIN) continue;
      reset = errno == ECONNRESET;
      if (!reset) fail("recv");
      break;
    }
    if (!write_done && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, data + off, size - off, MSG_NOSIGNAL);
      if (n > 0) off += static_cast<std::size_t>(n);
      else if (errno == EPIPE || errno == ECONNRESET) write_done = true;  // server closed first (error reply)
      else if (errno != EINTR && errno != EAGAIN) fail("send");
    }
  }
  ::close(fd);
  if (reset && off == size) fail("server reset a connection whose bytes it had all received");
  return got;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  the_server();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  the_server();
  std::string got = exchange(data, size);
  static constexpr std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.substr(0, preface.size()) == preface) {
    // HTTP/2 with prior knowledge: the server's first frame is its SETTINGS (RFC 9113 3.4):
    // a 9-byte header with type 4, no flags, stream 0. (Nothing at all is allowed: a session
    // the library gave up on fatally has nothing to say.)
    if (got.empty()) return 0;
    if (got.size() < 9) fail("HTTP/2 connection ends inside the server's first frame header");
    if (got[3] != 4 || got[4] != 0 || got.compare(5, 4, std::string(4, '\0')) != 0)
      fail("HTTP/2 connection does not start with the server's SETTINGS frame");
    return 0;
  }
  // After `101 Switching Protocols` the rest is HTTP/2 frames, whose bytes are not lines.
  const auto switched = got.find("HTTP/1.1 101 ");
  const std::string_view lines = std::string_view(got).substr(0, switched);
  // Every response the server wrote is well-formed at its start.
  for (std::size_t at = 0; (at = lines.find("HTTP/1.", at)) != std::string::npos; ++at) {
    if (at == 0 || lines[at - 1] == '\n') {
      if (at + 12 > lines.size() && switched == std::string::npos) fail("truncated status line");
    }
  }
  if (!got.empty() && got.compare(0, 9, "HTTP/1.1 ") != 0) fail("response does not start with HTTP/1.1");
  return 0;
}
