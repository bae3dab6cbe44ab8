// misbehaving-http-server: an HTTP/1.1 server on 127.0.0.1 that fails in one chosen way, so
// that tests can check that a client counts exactly that failure.
//   misbehaving-http-server --mode MODE [--port P] [--pid-file F] [--idle-ms N]
// Prints "listening on 127.0.0.1:PORT" once it accepts, and "served first request" once it
// has answered one (tests wait for that instead of sleeping). Thread per connection, plain sockets:
// the point is to be obviously correct, not fast.
//
// Modes (what happens to each request):
//   ok          200 "ok", keep-alive (honours a request's Connection: close)
//   status500   500, keep-alive
//   close-each  200 with Connection: close, then close (a correct server; not a failure)
//   reset       read the request, close with SO_LINGER 0: the client sees RST
//   close       read the request, close without answering (FIN)
//   hang        read the request, never answer
//   idle-close  answer the first request keep-alive, then close at once, as a server does
//               with an idle keep-alive connection while the client is sending the next one
//   idle-timeout  a correct keep-alive server with an idle timeout: after a response, a
//               connection with no new request within --idle-ms (50) is closed (FIN); a
//               request that arrived in time is answered
//   close-second  answer the first request keep-alive, read the second completely, close
//               without answering (FIN): the client wrote before any sign of the close
//   reset-second  the same, but close with RST
//   partial     send half a response, then close
//   garbage     answer with bytes that are not HTTP, then close
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include <arpa/inet.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

std::string mode;
int idle_ms = 50;
std::atomic<bool> served_one{false};

void note_served() {
  if (!served_one.exchange(true)) {
    std::printf("served first request\n");
    std::fflush(stdout);
  }
}

/// Waits until `fd` is readable or `ms` pass; false on timeout.
bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    const int n = ::poll(&p, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// Reads one request (header plus Content-Length body) into `req`, keeping any following bytes
/// in `buf`. False on EOF or error.
bool read_request(int fd, std::string& buf, std::string& req) {
  for (;;) {
    const auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::size_t body = 0;
      std::string head = buf.substr(0, end);
      for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (auto p = head.find("\r\ncontent-length:"); p != std::string::npos)
        body = std::strtoull(head.c_str() + p + 17, nullptr, 10);
      while (buf.size() < end + 4 + body) {
        char tmp[16384];
        const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<std::size_t>(n));
      }
      req = head;
      buf.erase(0, end + 4 + body);
      return true;
    }
    char tmp[16384];
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
}

void serve(int fd) {
  std::string buf, req;
  int served = 0;
  for (;;) {
    if (mode == "idle-timeout" && served > 0 && buf.empty() && !readable_within(fd, idle_ms)) break;
    if (!read_request(fd, buf, req)) break;
    ++served;
    const bool client_close = req.find("\r\nconnection: close") != std::string::npos;
    if ((mode == "close-second" || mode == "reset-second") && served == 2) {
      if (mode == "reset-second") {
        linger l{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      }
      break;
    }
    if (mode == "ok" || mode == "status500" || mode == "idle-close" || mode == "idle-timeout" ||
        mode == "close-second" || mode == "reset-second") {
      const char* status = mode == "status500" ? "500 Internal Server Error" : "200 OK";
      std::string resp = std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 2\r\n" +
                         (client_close ? "Connection: close\r\n" : "") + "\r\nok";
      const bool sent = send_all(fd, resp);
      if (sent) note_served();
      if (!sent || client_close || mode == "idle-close") break;
    } else if (mode == "close-each") {
      if (send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")) note_served();
      break;
    } else if (mode == "reset") {
      linger l{1, 0};  // close() now sends RST instead of FIN (tcp(7), SO_LINGER with 0 timeout)
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      break;
    } else if (mode == "close") {
      break;
    } else if (mode == "hang") {
      char tmp[256];
      while (::recv(fd, tmp, sizeof tmp, 0) > 0) {
      }
      break;
    } else if (mode == "partial") {
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok");
      break;
    } else if (mode == "garbage") {
      send_all(fd, "HELLO THERE\r\n\r\n");
      break;
    }
  }
  ::close(fd);
}

} // namespace

int main(int argc, char** argv) {
  int port = 0;
  const char* pid_file = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    if (a == "--mode") mode = argv[i + 1];
    else if (a == "--port") port = std::atoi(argv[i + 1]);
    else if (a == "--pid-file") pid_file = argv[i + 1];
    else if (a == "--idle-ms") idle_ms = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (mode.empty()) {
    std::fprintf(stderr, "usage: misbehaving-http-server --mode MODE [--port P] [--pid-file F] [--idle-ms N]\n");
    return 2;
  }
  const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A restart right after `kill -9` of the previous instance races with the kernel tearing it
  // down (kill() returns before the process has exited and closed its listener): retry for a
  // while on EADDRINUSE instead of dying, as a supervisor restart loop would.
  int bound = -1;
  for (int attempt = 0; attempt < 500; ++attempt) {
    bound = ::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (bound == 0 || errno != EADDRINUSE) break;
    ::usleep(10'000);
  }
  if (bound != 0 || ::listen(ls, 1024) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len);
  if (pid_file) {
    if (FILE* f = std::fopen(pid_file, "w")) {
      std::fprintf(f, "%d\n", static_cast<int>(getpid()));
      std::fclose(f);
    }
  }
  std::printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  for (;;) {
    const int fd = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::thread(serve, fd).detach();
  }
}
