#include "sockets.hpp"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace graceful::test {

void owned_fd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

listening_socket listen_tcp(const std::string& ip, int backlog) {
  listening_socket out;
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool v6 = ip.find(':') != std::string::npos;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    if (::inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) != 1) return out;
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    if (::inet_pton(AF_INET, ip.c_str(), &a->sin_addr) != 1) return out;
    len = sizeof *a;
  }
  owned_fd s(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(s.get(), backlog) != 0) return out;
  len = sizeof ss;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  out.port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  out.fd = std::move(s);
  return out;
}

child::spec socket_activated(std::vector<std::string> argv, int fd, const std::string& name,
                             std::vector<std::string> env_add, const std::string& listen_pid) {
  // child passes `fd` through at its number; the shell moves it to 3 and execs the program,
  // so LISTEN_PID=$$ is the program's own pid.
  std::string f = std::to_string(fd);
  std::string move = fd == 3 ? "" : "exec 3<&" + f + " " + f + "<&-; ";
  std::string cmd = move + "export LISTEN_PID=" + listen_pid + " LISTEN_FDS=1" +
                    (name.empty() ? std::string() : " LISTEN_FDNAMES=" + name) + "; exec \"$0\" \"$@\"";
  std::vector<std::string> sh{"/bin/sh", "-c", cmd};
  sh.insert(sh.end(), argv.begin(), argv.end());
  return child::spec{sh, std::move(env_add), {fd}};
}

received receive_with_fds(int sock, graceful::deadline d) {
  received r;
  pollfd p{sock, POLLIN, 0};
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d.remaining()).count();
  if (::poll(&p, 1, d.is_never() ? -1 : static_cast<int>(ms)) != 1) return r;
  char buf[4096];
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * 253)];
  iovec iov{buf, sizeof buf};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctrl;
  m.msg_controllen = sizeof ctrl;
  ssize_t n;
  while ((n = ::recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  r.bytes = n;
  if (n <= 0) return r;
  r.text.assign(buf, static_cast<std::size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      r.fds.emplace_back(fd);
    }
  }
  return r;
}

takeover_reply request_takeover(const std::string& path) {
  takeover_reply out;
  owned_fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    out.connect_errno = errno;
    return out;
  }
  std::string hello = "GRACEFUL-TAKEOVER 1 " + std::to_string(::getpid());
  ::send(s.get(), hello.data(), hello.size(), MSG_NOSIGNAL);
  out.message = receive_with_fds(s.get(), graceful::deadline::after(std::chrono::seconds(5)));
  return out;
}

} // namespace graceful::test
