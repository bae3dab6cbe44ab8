#include "handover.hpp"

#include <graceful/core/last_errno.hpp>
#include <graceful/core/listener_name.hpp>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <graceful/upgrade/errc.hpp>

extern char** environ;

namespace graceful::upgrade::detail {

// ---------------------------------------------------------------------------------------
// Hand-over protocol, version 1 (handover_version). The old process (parent) starts the
// new binary (child) with posix_spawn and these variables:
//
//   GRACEFUL_UPGRADE_PROTOCOL=1        version; the child refuses any other (protocol_mismatch)
//   GRACEFUL_PARENT_PID=<pid>          must equal the child's getppid(), else the variables
//                                      were inherited by a grandchild or forged: ignored
//   GRACEFUL_LISTEN_FDS=<n>            listening sockets at fds 3 .. 3+n-1 (systemd's layout)
//   GRACEFUL_LISTEN_FDNAMES=a:b:...    their names, colon-separated, n of them
//   GRACEFUL_READY_FD=<3+n>            one end of an AF_UNIX stream socketpair
//
// Every other fd but 0-2 is closed in the child. LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES are
// removed from the child's environment (the parent already adopted those sockets; they
// travel as GRACEFUL_LISTEN_FDS now). The child unsets all GRACEFUL_* variables as it
// reads them, marks every fd close-on-exec again, and checks each one is a socket.
//
// Once the child serves on the sockets it writes exactly one line on the ready fd:
//
//   "GRACEFUL-READY 1 <child pid>\n"
//
// and closes it. The parent waits for that line (at most the upgrade timeout). The line
// with another version is protocol_mismatch; EOF first means the child died (or refused);
// either way, and on timeout, the parent SIGKILLs and reaps the child and keeps serving.
// After a valid line the parent stops accepting and drains; it tells systemd
// "MAINPID=<child>\nREADY=1" from the main pid, so NotifyAccess=main suffices for this path.
// A socketpair rather than a pipe: send(MSG_NOSIGNAL) cannot kill a child whose parent is gone.
// ---------------------------------------------------------------------------------------

namespace {
constexpr const char* k_version = "GRACEFUL_UPGRADE_PROTOCOL";
constexpr const char* k_parent = "GRACEFUL_PARENT_PID";
constexpr const char* k_fds = "GRACEFUL_LISTEN_FDS";
constexpr const char* k_names = "GRACEFUL_LISTEN_FDNAMES";
constexpr const char* k_ready = "GRACEFUL_READY_FD";
constexpr int k_first_fd = 3;

std::optional<long> to_long(const char* s) {
  if (!s) return std::nullopt;
  long v = 0;
  auto end = s + std::strlen(s);
  auto [p, ec] = std::from_chars(s, end, v);
  if (ec != std::errc{} || p != end || s == end) return std::nullopt;
  return v;
}

std::vector<std::string> split_names(std::string_view s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::size_t start = 0;
  while (true) {
    auto c = s.find(':', start);
    out.emplace_back(s.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start));
    if (c == std::string_view::npos) break;
    start = c + 1;
  }
  return out;
}
// True when `pid` no longer runs: gone, or a zombie its parent has not reaped yet.
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');  // the command name may hold spaces and parentheses
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}
} // namespace

result<std::optional<inherited>> read_handover_env(spdlog::logger& log) {
  const char* ver = std::getenv(k_version);
  if (!ver) return std::optional<inherited>{};
  std::string version = ver;
  auto parent = to_long(std::getenv(k_parent));
  auto n = to_long(std::getenv(k_fds));
  std::string names_text = std::getenv(k_names) ? std::getenv(k_names) : "";
  auto ready = to_long(std::getenv(k_ready));
  for (auto k : {k_version, k_parent, k_fds, k_names, k_ready}) ::unsetenv(k);

  if (version != std::to_string(handover_version)) {
    log.error("upgrade: the parent speaks hand-over protocol {}, this binary speaks {}; refusing",
                  version, handover_version);
    return errc::protocol_mismatch;
  }
  if (parent && *parent > 1 && *parent != ::getppid() && process_gone(static_cast<pid_t>(*parent))) {
    // Our parent started us for a hand-over and has exited since (a second SIGTERM, a
    // SIGKILL): we were orphaned before we even started. Serving now, on sockets nobody
    // hands over or on our own, would leave a server the operator did not ask for.
    log.error("upgrade: pid {} started this hand-over and has exited; abandoning the upgrade", *parent);
    return errc::parent_gone;
  }
  if (!parent || *parent != ::getppid()) {
    // Meant for another process (a grandchild inherited them, or they are forged): touching
    // the fds they name could close or serve something that is not ours.
    log.warn("upgrade: ignoring hand-over variables meant for the child of pid {} (our parent is {})",
                 parent.value_or(-1), ::getppid());
    return std::optional<inherited>{};
  }
  auto names = split_names(names_text);
  if (!n || *n < 0 || *n > 1000 || names.size() != static_cast<std::size_t>(*n) || !ready ||
      *ready != k_first_fd + *n) {
    log.error("upgrade: malformed hand-over variables ({}={}, {}='{}', {}={}); refusing", k_fds,
                  n.value_or(-1), k_names, names_text, k_ready, ready.value_or(-1));
    return errc::invalid_inherited_fd;
  }
  inherited in;
  in.parent = static_cast<pid_t>(*parent);
  for (long i = 0; i < *n; ++i) {
    auto& name = names[static_cast<std::size_t>(i)];
    if (!graceful::valid_listener_name(name)) {
      log.error("upgrade: invalid inherited socket name '{}'", name);
      return errc::invalid_inherited_fd;
    }
    in.fds.push_back({name, static_cast<int>(k_first_fd + i)});
  }
  int rfd = static_cast<int>(*ready);
  struct stat st{};
  if (::fstat(rfd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    log.error("upgrade: hand-over ready fd {} is not a socket; refusing", rfd);
    return errc::invalid_inherited_fd;
  }
  ::fcntl(rfd, F_SETFD, FD_CLOEXEC);
  in.ready_fd.reset(rfd);
  return std::optional<inherited>(std::move(in));
}

std::vector<std::string> child_env(const std::vector<std::string>& names) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("LISTEN_PID=") || kv.starts_with("LISTEN_FDS=") || kv.starts_with("LISTEN_FDNAMES=") ||
        kv.starts_with("GRACEFUL_UPGRADE_PROTOCOL=") || kv.starts_with("GRACEFUL_PARENT_PID=") ||
        kv.starts_with("GRACEFUL_LISTEN_FDS=") || kv.starts_with("GRACEFUL_LISTEN_FDNAMES=") ||
        kv.starts_with("GRACEFUL_READY_FD="))
      continue;
    env.emplace_back(kv);
  }
  std::string joined;
  for (auto& n : names) joined += (joined.empty() ? "" : ":") + n;
  env.push_back(std::string(k_version) + "=" + std::to_string(handover_version));
  env.push_back(std::string(k_parent) + "=" + std::to_string(::getpid()));
  env.push_back(std::string(k_fds) + "=" + std::to_string(names.size()));
  env.push_back(std::string(k_names) + "=" + joined);
  env.push_back(std::string(k_ready) + "=" + std::to_string(k_first_fd + static_cast<int>(names.size())));
  return env;
}

std::string ready_line(pid_t pid) {
  return "GRACEFUL-READY " + std::to_string(handover_version) + " " + std::to_string(pid) + "\n";
}

result<pid_t> parse_ready_line(std::string_view line) {
  constexpr std::string_view prefix = "GRACEFUL-READY ";
  if (!line.starts_with(prefix)) return errc::protocol_mismatch;
  line.remove_prefix(prefix.size());
  auto sp = line.find(' ');
  if (sp == std::string_view::npos || line.substr(0, sp) != std::to_string(handover_version))
    return errc::protocol_mismatch;
  auto p = line.substr(sp + 1);
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), pid);
  if (ec != std::errc{} || end != p.data() + p.size() || pid <= 0) return errc::protocol_mismatch;
  return pid;
}

result<void> send_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_errno();
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok();
}

result<std::string> read_line(int fd, graceful::deadline d, int cancel_fd) {
  std::string line;
  while (true) {
    pollfd p[2] = {{fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    auto left = std::chrono::ceil<std::chrono::milliseconds>(d.remaining());
    int timeout = d.is_never() ? -1 : static_cast<int>(std::min<long long>(left.count(), INT_MAX));
    int r = ::poll(p, cancel_fd >= 0 ? 2 : 1, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      return last_errno();
    }
    if (cancel_fd >= 0 && (p[1].revents & POLLIN)) return errc::upgrade_cancelled;
    if (r == 0) return std::make_error_code(std::errc::timed_out);
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return errc::child_exited;
      return last_errno();
    }
    if (n == 0) return errc::child_exited;
    if (c == '\n') return line;
    if (line.size() > 4096) return errc::protocol_mismatch;
    line.push_back(c);
  }
}

} // namespace graceful::upgrade::detail
