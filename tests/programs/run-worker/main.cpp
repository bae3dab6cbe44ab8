// graceful-run-test-worker: a small socket-activated HTTP worker for graceful-run's tests.
//
//   --report FILE      write pid, LISTEN_* and NOTIFY_SOCKET, and every open fd to FILE
//   --no-ready         never send READY=1
//   --ready-delay MS   wait before READY=1
//   --ready-when FILE  wait until FILE exists before READY=1 (at most 60 s, then exit 4): a
//                      test decides the moment, instead of racing a delay
//   --ignore-term      ignore SIGTERM (only SIGKILL ends it)
//   --term-exit N      exit with code N on SIGTERM (default 0)
//   --crash-after MS   exit with code 3 after MS
//   --orphan FILE      start a grandchild that outlives us (sleeps 60 s); write its pid to FILE
//   --zombies N        start N children that exit at once and are never reaped by us
//
// Serves "HTTP/1.1 200" with body "<pid>\n" on fd 3 (Connection: close), one request at a
// time, so a SIGTERM never cuts a request: it is handled between requests.

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dirent.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

namespace {

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

const char* env_or(const char* k, const char* def) {
  const char* v = std::getenv(k);
  return v ? v : def;
}

// Lists the fds first, then opens the report: the report's own fd is not in it.
void report(const char* path) {
  std::string fds;
  DIR* d = opendir("/proc/self/fd");
  int self = d ? dirfd(d) : -1;
  while (d) {
    dirent* e = readdir(d);
    if (!e) break;
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == self) continue;
    char link[512] = {0};
    std::string p = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = readlink(p.c_str(), link, sizeof link - 1);
    if (n > 0) link[n] = 0;
    fds += std::string("fd ") + e->d_name + " " + link + "\n";
  }
  if (d) closedir(d);
  std::string tmp = std::string(path) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return;
  std::fprintf(f, "pid=%d\nLISTEN_PID=%s\nLISTEN_FDS=%s\nLISTEN_FDNAMES=%s\nNOTIFY_SOCKET=%s\n%s",
               getpid(), env_or("LISTEN_PID", "-"), env_or("LISTEN_FDS", "-"),
               env_or("LISTEN_FDNAMES", "-"), env_or("NOTIFY_SOCKET", "-"), fds.c_str());
  std::fclose(f);
  std::rename(tmp.c_str(), path);  // the test never sees a half-written report
}

void serve_one(int lfd) {
  int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return;
  std::string req;
  char buf[1024];
  while (req.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = recv(c, buf, sizeof buf, 0);
    if (n <= 0) break;
    req.append(buf, static_cast<std::size_t>(n));
  }
  std::string body = std::to_string(getpid()) + "\n";
  std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body;
  send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
  close(c);
}

} // namespace

int main(int argc, char** argv) {
  const char* report_path = nullptr;
  const char* orphan_path = nullptr;
  const char* ready_when = nullptr;
  bool ready = true, ignore_term = false;
  long ready_delay = 0, crash_after = -1, zombies = 0;
  int term_exit = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? argv[++i] : (std::fprintf(stderr, "missing value\n"), std::exit(2), ""); };
    if (a == "--report") report_path = next();
    else if (a == "--no-ready") ready = false;
    else if (a == "--ready-delay") ready_delay = std::atol(next());
    else if (a == "--ready-when") ready_when = next();
    else if (a == "--ignore-term") ignore_term = true;
    else if (a == "--term-exit") term_exit = std::atoi(next());
    else if (a == "--crash-after") crash_after = std::atol(next());
    else if (a == "--orphan") orphan_path = next();
    else if (a == "--zombies") zombies = std::atol(next());
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (report_path) report(report_path);
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  int sfd = -1;
  if (ignore_term) {
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
  } else {
    sigprocmask(SIG_BLOCK, &term, nullptr);
    sfd = signalfd(-1, &term, SFD_CLOEXEC);
  }
  if (orphan_path) {
    int p[2];
    if (pipe(p) != 0) return 1;
    pid_t c = fork();
    if (c == 0) {
      pid_t g = fork();
      if (g == 0) {
        sigprocmask(SIG_UNBLOCK, &term, nullptr);
        sleep_ms(60'000);
        _exit(0);
      }
      [[maybe_unused]] auto w = write(p[1], &g, sizeof g);
      _exit(0);
    }
    pid_t g = -1;
    [[maybe_unused]] auto r = read(p[0], &g, sizeof g);
    waitpid(c, nullptr, 0);
    FILE* f = std::fopen(orphan_path, "w");
    if (f) {
      std::fprintf(f, "%d\n", g);
      std::fclose(f);
    }
  }
  for (long i = 0; i < zombies; ++i)
    if (fork() == 0) _exit(0);
  if (ready) {
    if (ready_delay > 0) sleep_ms(ready_delay);
    for (int waited = 0; ready_when && access(ready_when, F_OK) != 0; waited += 10) {
      if (waited >= 60'000) return 4;
      sleep_ms(10);
    }
    sd_notify(0, "READY=1");
  }
  timespec t0{};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int lfd = std::atoi(env_or("LISTEN_FDS", "0")) > 0 ? 3 : -1;
  while (true) {
    pollfd fds[2] = {{sfd, POLLIN, 0}, {lfd, POLLIN, 0}};
    int timeout = 50;
    poll(fds, 2, timeout);
    if (sfd >= 0 && (fds[0].revents & POLLIN)) return term_exit;
    if (lfd >= 0 && (fds[1].revents & POLLIN)) serve_one(lfd);
    if (crash_after >= 0) {
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      long el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1'000'000;
      if (el >= crash_after) return 3;
    }
  }
}
