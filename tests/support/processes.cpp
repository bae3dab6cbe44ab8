#include "processes.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace graceful::test {

void become_subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

namespace {
bool stat_of(pid_t pid, char& state, pid_t& ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(in, s)) return false;
  auto close = s.rfind(')');  // comm may contain spaces and parentheses
  if (close == std::string::npos || close + 4 > s.size()) return false;
  std::istringstream rest(s.substr(close + 2));
  rest >> state >> ppid;
  return true;
}
} // namespace

char process_state(pid_t pid) {
  char st = 0;
  pid_t pp = 0;
  return stat_of(pid, st, pp) ? st : 0;
}

bool alive(pid_t pid) {
  char s = process_state(pid);
  return s != 0 && s != 'Z' && s != 'X';
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    pid_t pid = std::atoi(e->d_name);
    char st;
    pid_t pp;
    if (pid > 0 && stat_of(pid, st, pp) && pp == parent) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

int reap_exited() {
  int n = 0;
  int st;
  while (::waitpid(-1, &st, WNOHANG) > 0) ++n;
  return n;
}

void kill_and_reap(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  (void)wait_gone(pid, graceful::deadline::after(std::chrono::seconds(5)));
}

bool wait_gone(pid_t pid, graceful::deadline d) {
  while (true) {
    int st;
    ::waitpid(pid, &st, WNOHANG);  // reaps it if it is ours; harmless otherwise
    if (process_state(pid) == 0) return true;
    if (d.expired()) return false;
    timespec ts{0, 5'000'000};
    ::nanosleep(&ts, nullptr);
  }
}

pid_t parent_of(pid_t pid) {
  char st = 0;
  pid_t pp = -1;
  return stat_of(pid, st, pp) ? pp : -1;
}

int zombies_of(pid_t parent) {
  int n = 0;
  for (pid_t c : children_of(parent)) n += process_state(c) == 'Z';
  return n;
}

long cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');  // comm may hold spaces and parentheses
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  // After ")": state(3) ... utime is field 14, stime 15 (man 5 proc).
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

unsigned long raise_nofile(unsigned long n) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < n) {
    r.rlim_cur = std::min<rlim_t>(n, r.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &r);
    ::getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

int port_of(const std::string& address) {
  auto c = address.rfind(':');
  return c == std::string::npos ? 0 : std::atoi(address.c_str() + c + 1);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace graceful::test
