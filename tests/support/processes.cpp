#include "processes.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

std::string fetch(int port, const std::string& request) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};  // bounded: a test must never hang on a server that stopped answering
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      (request.empty() || ::send(s, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()))) {
    char buf[256];
    ssize_t n;
    while ((n = ::recv(s, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    if (n < 0) out.clear();
  }
  ::close(s);
  return out;
}

std::string http_get(int port, const std::string& path) {
  return fetch(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
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
