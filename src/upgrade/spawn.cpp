#include <graceful/upgrade/spawn.hpp>

#include <graceful/core/last_errno.hpp>

#include <cerrno>
#include <csignal>

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

namespace graceful::upgrade {

result<pid_t> posix_spawn_process(const spawn_request& r) {
  const int n = static_cast<int>(r.fds.size());
  const int first_free = 3 + n;
  // dup2(a, a) would leave FD_CLOEXEC set and an fd already sitting in the target range
  // could be overwritten before it is moved. Staging every source above the target range
  // first makes each dup2 a real move that clears FD_CLOEXEC on the target (dup2(2)).
  std::vector<int> staged;
  auto close_staged = [&] {
    for (int fd : staged) ::close(fd);
  };
  for (int fd : r.fds) {
    int s = ::fcntl(fd, F_DUPFD_CLOEXEC, first_free);
    if (s < 0) {
      auto ec = last_errno();
      close_staged();
      return ec;
    }
    staged.push_back(s);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int i = 0; i < n; ++i) posix_spawn_file_actions_adddup2(&fa, staged[static_cast<std::size_t>(i)], 3 + i);
  // Whatever else the program has open (log files, client connections, eventfds, fds a
  // library forgot to mark CLOEXEC) stays out of the new process.
  posix_spawn_file_actions_addclosefrom_np(&fa, first_free);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // The lifecycle blocks SIGTERM/SIGHUP/... in every thread, and exec keeps both the mask
  // and ignored dispositions (signal(7)): reset them, or the new server could not be stopped.
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv, envp;
  for (auto& a : r.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : r.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, r.executable.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close_staged();
  if (rc != 0) return std::error_code(rc, std::generic_category());
  return pid;
}

} // namespace graceful::upgrade
