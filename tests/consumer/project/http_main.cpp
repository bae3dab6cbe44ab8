// An HTTP server from the installed package: listen on port 0, answer one request, shut down.
#include <cstdio>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <graceful/core/deadline.hpp>
#include <graceful/http/server.hpp>

int main() {
  graceful::http::router r;
  r.get("/", [](graceful::http::context& c) { c.response.body = "consumer-http ok\n"; });
  graceful::http::server server(std::move(r), {.threads = 1});
  auto port = server.listen("127.0.0.1:0");
  if (!port) return std::fprintf(stderr, "listen: %s\n", port.error().message().c_str()), 1;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port.value());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 1;
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return 1;
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  auto stopped = server.shutdown(graceful::deadline::after(std::chrono::seconds(10)));
  bool ok = got.starts_with("HTTP/1.1 200") && got.find("consumer-http ok") != std::string::npos && stopped;
  std::printf("consumer-http: %s\n", ok ? "200 ok" : got.c_str());
  return ok ? 0 : 1;
}
