#include "http_client.hpp"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace graceful::test {

http_conn::http_conn(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    err_ = errno;
    return;
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    err_ = errno;
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

http_conn::~http_conn() {
  if (fd_ >= 0) ::close(fd_);
}

bool http_conn::send(std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      err_ = errno;
      end_ = errno == ECONNRESET || errno == EPIPE ? read_end::reset : read_end::error;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void http_conn::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool http_conn::fill(graceful::deadline d) {
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d.remaining()).count();
    int timeout = d.is_never() ? -1 : static_cast<int>(std::min<long long>(left, 60'000));
    int r = ::poll(&p, 1, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      if (d.expired()) {
        end_ = read_end::timeout;
        return false;
      }
      continue;
    }
    char tmp[16384];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      end_ = read_end::data;
      return true;
    }
    if (n == 0) {
      end_ = read_end::eof;
      return false;
    }
    if (errno == EINTR) continue;
    end_ = errno == ECONNRESET ? read_end::reset : read_end::error;
    return false;
  }
}

namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}
} // namespace

std::optional<http_response> http_conn::read_response(graceful::deadline d) {
  for (;;) {
    size_t hend;
    while ((hend = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(d)) return std::nullopt;
    http_response r;
    std::string head = buf_.substr(0, hend);
    size_t pos = head.find("\r\n");
    std::string line = head.substr(0, pos);
    if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) {
      end_ = read_end::error;
      return std::nullopt;
    }
    r.status = std::atoi(line.c_str() + 9);
    while (pos != std::string::npos) {
      size_t next = head.find("\r\n", pos + 2);
      std::string h = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      auto colon = h.find(':');
      if (colon != std::string::npos) r.headers[lower(h.substr(0, colon))] = trim(h.substr(colon + 1));
      pos = next;
    }
    buf_.erase(0, hend + 4);
    if (r.status >= 100 && r.status < 200) continue;  // 100 Continue: the real one follows
    if (r.header("transfer-encoding") == "chunked") {
      for (;;) {
        size_t le;
        while ((le = buf_.find("\r\n")) == std::string::npos)
          if (!fill(d)) return std::nullopt;
        size_t n = std::stoul(buf_.substr(0, le), nullptr, 16);
        while (buf_.size() < le + 2 + n + 2)
          if (!fill(d)) return std::nullopt;
        r.body += buf_.substr(le + 2, n);
        buf_.erase(0, le + 2 + n + 2);
        if (n == 0) break;
      }
    } else if (!r.header("content-length").empty()) {
      size_t n = std::stoul(r.header("content-length"));
      while (buf_.size() < n)
        if (!fill(d)) return std::nullopt;
      r.body = buf_.substr(0, n);
      buf_.erase(0, n);
    } else if (r.status != 204 && r.status != 304) {
      while (fill(d)) {}
      if (end_ != read_end::eof) return std::nullopt;
      r.body = std::move(buf_);
      buf_.clear();
    }
    return r;
  }
}

bool http_conn::wait_for(std::string_view needle, graceful::deadline d) {
  while (buf_.find(needle) == std::string::npos)
    if (!fill(d)) return false;
  return true;
}

read_end http_conn::read_until_close(graceful::deadline d) {
  while (fill(d)) {}
  if (end_ == read_end::eof || end_ == read_end::reset) {
    // A real client closes its side once it sees the server's FIN; so do we, which ends
    // the server's lingering close at once.
    ::close(fd_);
    fd_ = -1;
  }
  return end_;
}

std::string get_request(std::string_view path, std::string_view extra) {
  std::string s = "GET ";
  s += path;
  s += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  s += extra;
  s += "\r\n";
  return s;
}

std::optional<http_response> http_get(int port, std::string_view path) {
  http_conn c(port);
  if (!c.connected() || !c.send(get_request(path, "Connection: close\r\n"))) return std::nullopt;
  return c.read_response(graceful::deadline::after(std::chrono::seconds(5)));
}

std::string fetch(int port, std::string_view request) {
  http_conn c(port);
  if (!c.connected() || (!request.empty() && !c.send(request))) return {};
  // Bounded: a test must never hang on a server that stopped answering.
  auto end = c.read_until_close(graceful::deadline::after(std::chrono::seconds(5)));
  return end == read_end::eof ? c.leftover() : std::string();
}

std::string http_get_text(int port, std::string_view path) {
  return fetch(port, get_request(path, "Connection: close\r\n"));
}

} // namespace graceful::test
