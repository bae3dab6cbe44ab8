#include "spawn.hpp"

#include <graceful/core/find_executable.hpp>
#include <graceful/core/last_errno.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace graceful::run {
namespace {

// Variables that describe graceful-run's own activation and must not leak to the worker.
bool inherited_activation_var(std::string_view kv) {
  for (std::string_view k : {"LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "NOTIFY_SOCKET=",
                             "WATCHDOG_PID=", "WATCHDOG_USEC="})
    if (kv.starts_with(k)) return true;
  return false;
}

graceful::result<std::string> resolve(const std::string& cmd) {
  auto p = graceful::find_executable(cmd);  // execvp's search order, documented there
  if (!p) return p.error();
  return p.value().string();
}

// Async-signal-safe: writes `v` right-aligned into [begin, end) and returns the first digit.
char* format_pid(char* begin, char* end, pid_t v) {
  char* p = end;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && p > begin);
  return p;
}

} // namespace

process::~process() {
  if (pid_ > 0) {
    kill_group();
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

process::process(process&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}

process& process::operator=(process&& o) noexcept {
  if (this != &o) {
    process old{std::exchange(pid_, std::exchange(o.pid_, -1))};
  }
  return *this;
}

void process::signal(int sig) const noexcept {
  if (pid_ > 0) ::kill(pid_, sig);
}

void process::kill_group() const noexcept {
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);  // in case it left its group
  }
}

graceful::result<process> spawn(const spawn_request& req) {
  auto path = resolve(req.argv.at(0));
  if (!path) return path.error();

  // Everything the child needs is built here, before fork: after fork only
  // async-signal-safe calls are allowed (the parent may hold malloc's lock in another
  // thread of a sanitizer runtime, for one).
  const auto& ls = *req.listeners;
  const int n = static_cast<int>(ls.size());
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!inherited_activation_var(*e)) env.emplace_back(*e);
  std::string listen_pid = "LISTEN_PID=";
  const std::size_t pid_at = listen_pid.size();
  listen_pid.append(24, '\0');
  if (n > 0) {
    env.push_back("LISTEN_FDS=" + std::to_string(n));
    std::string names = "LISTEN_FDNAMES=";
    for (int i = 0; i < n; ++i) names += (i ? ":" : "") + ls[static_cast<std::size_t>(i)].name;
    env.push_back(std::move(names));
  }
  if (!req.notify_socket.empty()) env.push_back("NOTIFY_SOCKET=" + req.notify_socket);
  std::vector<char*> envp;
  for (auto& kv : env) envp.push_back(kv.data());
  if (n > 0) envp.push_back(listen_pid.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = req.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<int> sources;
  for (auto& l : ls) sources.push_back(l.fd.get());

  // exec failure is reported through a close-on-exec pipe: EOF means exec succeeded.
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return graceful::last_errno();
  unique_fd err_read{pipefd[0]}, err_write{pipefd[1]};

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return graceful::last_errno();
  if (pid == 0) {
    // ---- child: async-signal-safe calls only ----
    ::setpgid(0, 0);
    // If graceful-run itself dies (SIGKILL, OOM killer), the worker is told to stop rather
    // than left serving unsupervised on sockets a new graceful-run could not bind again.
    // Checked after prctl: the parent may have died before it took effect.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);  // SIG_IGN survives exec
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Sources are all >= 3+n (open_listener), so no dup2 overwrites a source not yet
    // placed; dup2 clears FD_CLOEXEC on the copy only.
    for (int i = 0; i < n; ++i)
      if (::dup2(sources[static_cast<std::size_t>(i)], 3 + i) < 0) ::_exit(127);
    // Anything else graceful-run inherited without close-on-exec must not reach the worker.
    if (::syscall(SYS_close_range, 3 + n, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3 + n; fd < 65536; ++fd) {
        int fl = ::fcntl(fd, F_GETFD);
        if (fl >= 0) ::fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
      }
    }
    if (n > 0) {
      char* end = listen_pid.data() + listen_pid.size();
      char* begin = listen_pid.data() + pid_at;
      char digits[24];
      char* d = format_pid(digits, digits + sizeof digits, ::getpid());
      std::size_t len = static_cast<std::size_t>(digits + sizeof digits - d);
      for (std::size_t i = 0; i < len && begin + i < end; ++i) begin[i] = d[i];
    }
    ::execve(path.value().c_str(), argv.data(), envp.data());
    int e = errno;
    [[maybe_unused]] auto w = ::write(err_write.get(), &e, sizeof e);
    ::_exit(127);
  }
  // ---- parent ----
  process child{pid};
  // Also from the parent: a signal to the group must reach the child even before it ran
  // its own setpgid (EACCES once it has exec'd is harmless).
  ::setpgid(pid, pid);
  err_write.reset();
  int child_errno = 0;
  ssize_t r;
  do {
    r = ::read(err_read.get(), &child_errno, sizeof child_errno);
  } while (r < 0 && errno == EINTR);
  if (r == static_cast<ssize_t>(sizeof child_errno)) {
    // The child exits with 127 right after writing; reap it here, not in the event loop.
    int st = 0;
    ::waitpid(pid, &st, 0);
    child.release();
    return std::error_code{child_errno, std::generic_category()};
  }
  return child;
}

} // namespace graceful::run
