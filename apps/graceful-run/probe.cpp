#include "probe.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace graceful::run {

graceful::result<ready_url> parse_ready_url(std::string_view url) {
  ready_url r;
  r.text = std::string(url);
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme)) return std::make_error_code(std::errc::invalid_argument);
  url.remove_prefix(scheme.size());
  auto slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  if (slash != std::string_view::npos) r.path = std::string(url.substr(slash));
  auto colon = hostport.rfind(':');
  if (colon == std::string_view::npos) return std::make_error_code(std::errc::invalid_argument);
  auto host = hostport.substr(0, colon);
  if (host != "127.0.0.1" && host != "localhost")
    return std::make_error_code(std::errc::invalid_argument);
  auto port = hostport.substr(colon + 1);
  unsigned v = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (ec != std::errc{} || p != port.data() + port.size() || v == 0 || v > 65535)
    return std::make_error_code(std::errc::invalid_argument);
  r.port = static_cast<std::uint16_t>(v);
  return r;
}

graceful::result<http_probe> http_probe::start(const ready_url& url) {
  http_probe p;
  p.fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!p.fd_) return std::error_code{errno, std::generic_category()};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(url.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(p.fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 &&
      errno != EINPROGRESS)
    return std::error_code{errno, std::generic_category()};
  p.request_ = fmt::format(
      "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: graceful-run\r\nConnection: close\r\n\r\n",
      url.path, url.port);
  return p;
}

short http_probe::events() const noexcept {
  return step_ == step::reading ? POLLIN : POLLOUT;
}

http_probe::outcome http_probe::advance() {
  if (step_ == step::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      why_ = std::strerror(err);
      return outcome::not_ready;
    }
    step_ = step::sending;
  }
  if (step_ == step::sending) {
    while (sent_ < request_.size()) {
      ssize_t n = ::send(fd_.get(), request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return outcome::pending;
        why_ = std::strerror(errno);
        return outcome::not_ready;
      }
      sent_ += static_cast<std::size_t>(n);
    }
    step_ = step::reading;
    return outcome::pending;
  }
  char buf[512];
  while (true) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return outcome::pending;
      why_ = std::strerror(errno);
      return outcome::not_ready;
    }
    if (n == 0) break;
    response_.append(buf, static_cast<std::size_t>(n));
    if (response_.find("\r\n") != std::string::npos || response_.size() > 4096) break;
  }
  // "HTTP/1.1 200 OK"
  auto line = response_.substr(0, response_.find("\r\n"));
  if (line.size() >= 12 && line.starts_with("HTTP/1.") && line[8] == ' ' && line[9] == '2')
    return outcome::ready;
  why_ = line.empty() ? "connection closed without a response" : "answered \"" + line + "\"";
  return outcome::not_ready;
}

} // namespace graceful::run
