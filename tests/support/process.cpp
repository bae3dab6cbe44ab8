#include "process.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace graceful::test {

std::string bin_dir() {
  if (const char* e = std::getenv("GRACEFUL_BIN_DIR")) return e;
  return GRACEFUL_TEST_BIN_DIR;
}
std::string bin(const std::string& name) { return bin_dir() + "/" + name; }

child::child(spec s) {
  char tmpl[] = "/tmp/graceful-test-out-XXXXXX";
  int out = mkstemp(tmpl);
  if (out < 0) throw std::system_error(errno, std::generic_category(), "mkstemp");
  out_path_ = tmpl;
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (auto& kv : s.env_add) env.push_back(kv);
  std::vector<char*> argv, envp;
  for (auto& a : s.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& a : env) envp.push_back(a.data());
  envp.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid_ == 0) {
    if (s.new_process_group) setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out, 1);
    dup2(out, 2);
    for (int fd : s.keep_fds) {
      int flags = fcntl(fd, F_GETFD);
      if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    // Close everything else so the child sees only what a real supervisor would pass.
    DIR* d = opendir("/proc/self/fd");
    std::vector<int> to_close;
    if (d) {
      while (auto* ent = readdir(d)) {
        int fd = std::atoi(ent->d_name);
        if (fd > 2 && fd != dirfd(d)) {
          bool keep = false;
          for (int k : s.keep_fds) keep = keep || (k == fd);
          if (!keep) to_close.push_back(fd);
        }
      }
      closedir(d);
    }
    for (int fd : to_close) close(fd);
    // Reset the signal mask: the test runner may have blocked signals.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out);
}

child::~child() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st;
    waitpid(pid_, &st, 0);
  }
  if (!out_path_.empty()) unlink(out_path_.c_str());
}

void child::signal(int sig) const {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> child::wait(graceful::deadline d) {
  while (!status_) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (d.expired()) return std::nullopt;
    struct timespec ts{0, 5'000'000};
    nanosleep(&ts, nullptr);
  }
  return status_;
}

std::string child::output() const {
  std::ifstream in(out_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool child::wait_for_output(const std::string& needle, graceful::deadline d) const {
  return eventually([&] { return output().find(needle) != std::string::npos; }, d);
}

int count_fds(pid_t pid) {
  int n = 0;
  std::string path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(path.c_str());
  if (!d) return -1;
  while (auto* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= path.size();) {
    auto end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    auto dir = path.substr(start, end - start);
    auto full = dir + "/" + name;
    if (!dir.empty() && ::access(full.c_str(), X_OK) == 0) return full;
    start = end + 1;
  }
  return "";
}

std::vector<long> numbers_in(const std::string& text, const std::string& before, const std::string& after) {
  // No std::regex: GCC 12 warns inside it under the sanitizers.
  std::vector<long> out;
  for (auto p = text.find(before); p != std::string::npos; p = text.find(before, p + 1)) {
    auto q = p + before.size();
    auto e = q;
    while (e < text.size() && std::isdigit(static_cast<unsigned char>(text[e]))) ++e;
    if (e > q && text.compare(e, after.size(), after) == 0) out.push_back(std::stol(text.substr(q, e - q)));
  }
  return out;
}

std::vector<pid_t> pids_in(const std::string& text, const std::string& before, const std::string& after) {
  std::vector<pid_t> out;
  for (long n : numbers_in(text, before, after)) out.push_back(static_cast<pid_t>(n));
  return out;
}

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

int logged_port(const child& c, const std::string& before, graceful::deadline d) {
  int port = -1;
  eventually([&] {
    auto found = numbers_in(c.output(), before);
    if (!found.empty()) port = static_cast<int>(found.front());
    return port > 0;
  }, d);
  return port;
}

} // namespace graceful::test
