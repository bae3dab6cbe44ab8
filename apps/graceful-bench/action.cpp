#include "action.hpp"

#include <cerrno>
#include <cstring>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace graceful::bench {

scheduled_action::scheduled_action(std::string command, std::chrono::nanoseconds at,
                                   clock::time_point start) {
  record_.command = std::move(command);
  record_.at = at;
  thread_ = std::thread([this, start] { run(start); });
}

scheduled_action::~scheduled_action() { finish(true); }

action_record scheduled_action::finish(bool cancel) {
  if (cancel) {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
  }
  cancelled_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  return record_;
}

void scheduled_action::run(clock::time_point start) {
  {
    std::unique_lock lock(mutex_);
    if (cancelled_cv_.wait_until(lock, start + record_.at, [this] { return cancelled_; })) {
      record_.error = "not run: the load stopped before --at";
      return;
    }
  }
  const char* argv[] = {"sh", "-c", record_.command.c_str(), nullptr};
  pid_t pid = -1;
  const auto t0 = clock::now();
  // posix_spawn uses vfork-like clone on glibc: no copy of this process's memory, so a large
  // timeline does not make the action start late.
  // The command's stdout goes to our stderr: stdout may be carrying the --json document.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
  const int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  record_.started = t0 - start;
  if (rc != 0) {
    record_.error = std::string("posix_spawn /bin/sh: ") + std::strerror(rc);
    return;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  record_.ended = clock::now() - start;
  record_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace graceful::bench
