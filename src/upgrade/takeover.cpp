#include "takeover.hpp"

#include <graceful/core/last_errno.hpp>
#include <graceful/core/listener_name.hpp>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <graceful/upgrade/errc.hpp>

#include "handover.hpp"

namespace graceful::upgrade::detail {

// ---------------------------------------------------------------------------------------
// Takeover protocol, version 1 (takeover_version). For a new process that the old one did
// not start (started by hand, or by systemd's ExecReload=): the old process offers its
// listening sockets on a UNIX socket, like HAProxy's `-x` and Proxygen's socket takeover.
//
// Socket: AF_UNIX SOCK_SEQPACKET (message boundaries keep each SCM_RIGHTS batch with its
// text), bound at PATH.<pid>.tmp, chmod 0600, listening, then rename(2)d over PATH: a
// successor that offers takeover at the same path replaces the old socket atomically, and
// the socket is never reachable with a looser mode. On exit a process unlinks PATH only
// if it is still its own inode.
//
// Both sides check the other's uid with SO_PEERCRED (must equal our euid); the client also
// refuses a PATH that is a symlink, not a socket, owned by another uid, or group/world
// writable. One conversation at a time; each message is one datagram:
//
//   new -> old   "GRACEFUL-TAKEOVER 1 <new pid>"
//   old -> new   "GRACEFUL-TAKEOVER-FDS 1 <n> <name1:name2:...>"  + SCM_RIGHTS with n fds
//           or   "GRACEFUL-TAKEOVER-ERR 1 <reason>"   (wrong uid, wrong version, busy, stopping)
//   new -> old   "GRACEFUL-READY 1 <new pid>"          once it serves (same line as the
//                                                       parent/child hand-over)
//
// After READY the old process stops accepting and drains, and tells systemd
// "MAINPID=<new pid>\nREADY=1". If the connection closes before READY, or READY does not
// come within the upgrade timeout, the old process logs why and keeps serving; the new
// process's copies of the sockets are its own problem (it was not started by us).
// A version other than 1 on either side is answered with ERR and the conversation ends.
// ---------------------------------------------------------------------------------------

namespace {

constexpr std::size_t k_max_fds = 253;  // SCM_MAX_FD (net/scm.h)
constexpr std::chrono::seconds k_hello_timeout{2};  // a silent peer blocks other takeovers this long


spdlog::logger& log_of(const std::shared_ptr<spdlog::logger>& l) {
  return l ? *l : *spdlog::default_logger_raw();
}

result<void> send_msg(int fd, const std::string& text, const std::vector<int>& fds = {}) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  while (::sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return last_errno();
  }
  return ok();
}

struct message {
  std::string text;
  std::vector<unique_fd> fds;
};

// Errors: timed_out, upgrade_cancelled (cancel_fd readable), takeover_failed (EOF).
result<message> recv_msg(int fd, graceful::deadline d, int cancel_fd = -1) {
  while (true) {
    pollfd p[2] = {{fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    auto left = std::chrono::ceil<std::chrono::milliseconds>(d.remaining());
    int timeout = d.is_never() ? -1 : static_cast<int>(std::min<long long>(left.count(), INT_MAX));
    int r = ::poll(p, cancel_fd >= 0 ? 2 : 1, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return last_errno();
    if (cancel_fd >= 0 && (p[1].revents & POLLIN)) return errc::upgrade_cancelled;
    if (r == 0) return std::make_error_code(std::errc::timed_out);
    break;
  }
  message m;
  char buf[8192];
  iovec iov{buf, sizeof buf};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * k_max_fds));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  // MSG_CMSG_CLOEXEC: received fds must not leak into anything this process spawns.
  ssize_t n;
  while ((n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
  if (n < 0) return errno == ECONNRESET ? std::error_code(errc::takeover_failed) : last_errno();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int f;
        std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
        m.fds.emplace_back(f);
      }
    }
  }
  if (n == 0 && m.fds.empty()) return errc::takeover_failed;
  if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) return errc::protocol_mismatch;
  m.text.assign(buf, static_cast<std::size_t>(n));
  return m;
}

std::optional<ucred> peer_cred(int fd) {
  ucred cr{};
  socklen_t len = sizeof cr;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) return std::nullopt;
  return cr;
}

std::vector<std::string_view> words(std::string_view s, std::size_t max) {
  std::vector<std::string_view> out;
  while (!s.empty() && out.size() + 1 < max) {
    auto sp = s.find(' ');
    out.push_back(s.substr(0, sp));
    if (sp == std::string_view::npos) return out;
    s.remove_prefix(sp + 1);
  }
  out.push_back(s);
  return out;
}

template <class T> std::optional<T> number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

result<sockaddr_un> unix_address(const std::filesystem::path& p) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (p.native().empty() || p.native().size() >= sizeof a.sun_path) return std::make_error_code(std::errc::filename_too_long);
  std::memcpy(a.sun_path, p.c_str(), p.native().size());
  return a;
}

} // namespace

result<std::unique_ptr<takeover_server>> takeover_server::start(const std::filesystem::path& path,
                                                                takeover_hooks hooks) {
  auto tmp = path;
  tmp += "." + std::to_string(::getpid()) + ".tmp";
  auto addr = unix_address(tmp);
  if (!addr) return addr.error();
  std::unique_ptr<takeover_server> s(new takeover_server);
  s->path_ = path;
  s->hooks_ = std::move(hooks);
  s->listen_fd_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s->listen_fd_) return last_errno();
  ::unlink(tmp.c_str());  // a stale one from a crashed process with our pid
  if (::bind(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr.value()), sizeof(sockaddr_un)) != 0)
    return last_errno();
  // bind(2) creates the file with the umask's mode; tighten it before listen(), so that no
  // one can ever connect while it is looser than 0600 (connect before listen is refused).
  if (::chmod(tmp.c_str(), 0600) != 0 || ::listen(s->listen_fd_.get(), 8) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {
    auto ec = last_errno();
    ::unlink(tmp.c_str());
    return ec;
  }
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    s->dev_ = st.st_dev;
    s->ino_ = st.st_ino;
  }
  s->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!s->stop_fd_) return last_errno();
  s->thread_ = std::thread([p = s.get()] { p->run(); });
  log_of(s->hooks_.logger).info("upgrade: offering listening sockets for takeover on {}", path.string());
  return s;
}

takeover_server::~takeover_server() {
  std::uint64_t one = 1;
  if (stop_fd_) (void)!::write(stop_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  // Unlink only our own socket: a successor may already have renamed its own over the path.
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

void takeover_server::run() {
  while (true) {
    pollfd p[3] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}, {hooks_.cancel_fd, POLLIN, 0}};
    int r = ::poll(p, hooks_.cancel_fd >= 0 ? 3 : 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (p[1].revents & POLLIN) || (p[2].revents & POLLIN)) return;
    unique_fd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    converse(conn.get());
  }
}

void takeover_server::converse(int conn) {
  auto& log = log_of(hooks_.logger);
  auto refuse = [&](const std::string& why) {
    (void)send_msg(conn, "GRACEFUL-TAKEOVER-ERR " + std::to_string(takeover_version) + " " + why);
  };
  // Read the hello before any answer, even a refusal: closing a UNIX socket with unread
  // data makes the peer's recv fail with ECONNRESET (net/unix/af_unix.c, unix_release_sock)
  // and the refusal would never be read.
  auto hello = recv_msg(conn, graceful::deadline::after(k_hello_timeout), stop_fd_.get());
  if (!hello) return;
  auto cr = peer_cred(conn);
  if (!cr || cr->uid != ::geteuid()) {
    log.warn("upgrade: takeover refused: peer pid {} runs as uid {}, not {}", cr ? cr->pid : -1,
             cr ? static_cast<long>(cr->uid) : -1L, static_cast<long>(::geteuid()));
    refuse("peer uid not allowed");
    return;
  }
  auto w = words(hello.value().text, 3);
  if (w.size() != 3 || w[0] != "GRACEFUL-TAKEOVER" || w[1] != std::to_string(takeover_version)) {
    log.warn("upgrade: takeover refused: pid {} speaks '{}', not takeover protocol {}", cr->pid,
             hello.value().text.substr(0, 64), takeover_version);
    refuse("protocol version mismatch");
    return;
  }
  auto fds = hooks_.begin();
  if (!fds) {
    log.warn("upgrade: takeover by pid {} refused: {}", cr->pid, fds.error().message());
    refuse(fds.error().message());
    return;
  }
  std::string names;
  std::vector<int> raw;
  for (auto& nf : fds.value()) {
    names += (names.empty() ? "" : ":") + nf.name;
    raw.push_back(nf.fd);
  }
  log.info("upgrade: handing {} listening socket(s) to pid {} over the takeover socket", raw.size(), cr->pid);
  auto sent = send_msg(conn, "GRACEFUL-TAKEOVER-FDS " + std::to_string(takeover_version) + " " +
                                 std::to_string(raw.size()) + " " + names, raw);
  if (!sent) {
    hooks_.end(sent.error());
    return;
  }
  auto ready = recv_msg(conn, graceful::deadline::after(hooks_.timeout), hooks_.cancel_fd);
  if (!ready) {
    auto ec = ready.error();
    if (ec == errc::takeover_failed) ec = errc::child_exited;
    if (ec == std::errc::timed_out) ec = errc::child_not_ready;
    hooks_.end(ec);
    return;
  }
  auto pid = parse_ready_line(ready.value().text);
  if (!pid) {
    hooks_.end(pid.error());
    return;
  }
  hooks_.end(pid.value());
}

result<takeover_client> take_over(const std::filesystem::path& path, graceful::deadline d, spdlog::logger& log) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) return last_errno();
  if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
    log.error("upgrade: refusing takeover socket {}: {} (mode {:o}, owner uid {}; want a socket of uid {}, "
                  "not group/world writable)", path.string(), S_ISLNK(st.st_mode) ? "a symlink" :
                  !S_ISSOCK(st.st_mode) ? "not a socket" : "unsafe owner or mode",
                  st.st_mode & 07777, st.st_uid, ::geteuid());
    return errc::peer_rejected;
  }
  auto addr = unix_address(path);
  if (!addr) return addr.error();
  takeover_client c;
  c.conn.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!c.conn) return last_errno();
  if (::connect(c.conn.get(), reinterpret_cast<sockaddr*>(&addr.value()), sizeof(sockaddr_un)) != 0)
    return last_errno();
  auto cr = peer_cred(c.conn.get());
  if (!cr || cr->uid != ::geteuid()) {
    log.error("upgrade: refusing takeover from {}: the process behind it runs as uid {}", path.string(),
                  cr ? static_cast<long>(cr->uid) : -1L);
    return errc::peer_rejected;
  }
  c.old_pid = cr->pid;
  if (auto r = send_msg(c.conn.get(), "GRACEFUL-TAKEOVER " + std::to_string(takeover_version) + " " +
                                          std::to_string(::getpid()));
      !r)
    return r.error();
  auto m = recv_msg(c.conn.get(), d);
  if (!m) return m.error();
  auto w = words(m.value().text, 4);
  if (w.size() >= 2 && w[0] == "GRACEFUL-TAKEOVER-ERR") {
    log.error("upgrade: pid {} refused the takeover: {}", c.old_pid, w.size() >= 3 ? std::string(w[2]) +
                  (w.size() == 4 ? " " + std::string(w[3]) : "") : "");
    return errc::takeover_failed;
  }
  if (w.size() < 3 || w[0] != "GRACEFUL-TAKEOVER-FDS" || w[1] != std::to_string(takeover_version)) {
    log.error("upgrade: pid {} answered the takeover with an unknown message '{}'", c.old_pid,
                  m.value().text.substr(0, 64));
    return errc::protocol_mismatch;
  }
  auto n = number<std::size_t>(w[2]);
  std::string_view names = w.size() == 4 ? w[3] : std::string_view{};
  std::vector<std::string> split;
  while (!names.empty()) {
    auto col = names.find(':');
    split.emplace_back(names.substr(0, col));
    if (col == std::string_view::npos) break;
    names.remove_prefix(col + 1);
  }
  if (!n || *n != m.value().fds.size() || split.size() != *n) {
    log.error("upgrade: takeover message announced {} sockets, carried {} fds and {} names",
                  n.value_or(0), m.value().fds.size(), split.size());
    return errc::protocol_mismatch;
  }
  // Every name checked before any fd leaves its unique_fd: on a refusal all the received
  // sockets close here, so a failed takeover leaves this process holding none of them.
  for (std::size_t i = 0; i < *n; ++i) {
    if (!graceful::valid_listener_name(split[i])) {
      log.error("upgrade: pid {} sent socket {} of {} under an invalid name '{}'; refusing all of them",
                    c.old_pid, i + 1, *n, split[i]);
      return errc::protocol_mismatch;
    }
  }
  for (std::size_t i = 0; i < *n; ++i) c.fds.push_back({split[i], m.value().fds[i].release()});
  return c;
}

result<void> send_takeover_ready(int conn) {
  auto line = ready_line(::getpid());
  line.pop_back();  // one datagram, no newline needed
  return send_msg(conn, line);
}

} // namespace graceful::upgrade::detail
