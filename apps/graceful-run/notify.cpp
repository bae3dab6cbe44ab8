#include "notify.hpp"

#include <graceful/core/last_errno.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <random>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

namespace graceful::run {

graceful::result<notify_socket> notify_socket::open() {
  notify_socket s;
  s.fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.fd_) return graceful::last_errno();
  int one = 1;
  if (::setsockopt(s.fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
    return graceful::last_errno();
  std::random_device rd;
  std::string name = fmt::format("graceful-run/{}/{:08x}", ::getpid(), rd());
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  // Abstract address: a leading NUL, then the name, not NUL-terminated (unix(7)).
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::bind(s.fd_.get(), reinterpret_cast<sockaddr*>(&a), len) != 0)
    return graceful::last_errno();
  s.address_ = "@" + name;
  return s;
}

std::optional<notify_message> notify_socket::receive() {
  // sd_notify messages are small; systemd itself caps them at 4 KiB (NOTIFY_BUFFER_MAX is
  // larger, but nobody needs more than READY/STATUS/MAINPID here).
  char buf[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)];
  iovec iov{buf, sizeof buf - 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return std::nullopt;
  notify_message m;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      m.sender = cred.pid;
    } else if (c->cmsg_type == SCM_RIGHTS) {
      // sd_pid_notify_with_fds() can attach fds (FDSTORE=1); we keep none of them.
      auto count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        ::close(fd);
      }
    }
  }
  std::string_view text{buf, static_cast<std::size_t>(n)};
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    if (!line.empty()) m.assignments.emplace_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return m;
}

} // namespace graceful::run
