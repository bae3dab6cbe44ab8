// A tiny server for the upgrade layer's tests, independent of the lifecycle and HTTP layers:
// every accepted connection gets "<pid>\n" and is closed, so a client sees which process
// served it. SIGHUP upgrades, SIGTERM stops; a completed hand-over stops accepting and exits 0.
//
//   upgrade-test-server --listen NAME=ADDR... [--pid-file P] [--upgrade-timeout MS]
//                       [--takeover PATH] [--takeover-socket PATH] [--ready-delay MS]
//                       [--fd-report PREFIX] [--addr-file P] [--serve-delay MS] [--leak-fd]
//                       [--child-stop-timeout MS] [--no-accept | --accept] [--never-ready]
// --no-accept: never accepts (an old process that leaves every connection to the new one);
// --accept undoes it (for a new binary started with the same argv plus its own flags).
// --never-ready: serves but never calls ready(); prints "never ready pid=N", holds each
// connection it accepts unanswered, and on SIGTERM answers those and the ones still queued,
// then exits 0 (a new process that drains what it accepted when it is stopped).
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <graceful/upgrade/upgrader.hpp>

namespace up = graceful::upgrade;

namespace {

// Lists the fds this process was started with, before it opens anything itself.
void report_fds(const std::string& prefix) {
  std::string out;
  DIR* d = ::opendir("/proc/self/fd");
  int self = ::dirfd(d);
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == self) continue;
    char target[256] = {};
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    ::readlink(link.c_str(), target, sizeof target - 1);
    out += std::string(e->d_name) + " " + target + "\n";
  }
  ::closedir(d);
  std::ofstream(prefix + "." + std::to_string(::getpid())) << out;
}

int usage(const char* why) {
  std::fprintf(stderr, "upgrade-test-server: %s\n", why);
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> listens;
  up::options opts;
  int ready_delay_ms = 0, serve_delay_ms = 0;
  bool accept_on = true, never_ready = false;
  std::string addr_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--listen") {
      auto v = next();
      auto eq = v.find('=');
      if (eq == std::string::npos) return usage("--listen NAME=ADDR");
      listens.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (a == "--pid-file") opts.pid_file = next();
    else if (a == "--upgrade-timeout") opts.upgrade_timeout = std::chrono::milliseconds(std::atoi(next().c_str()));
    else if (a == "--takeover") opts.takeover_from = next();
    else if (a == "--takeover-socket") opts.takeover_socket = next();
    else if (a == "--ready-delay") ready_delay_ms = std::atoi(next().c_str());
    else if (a == "--serve-delay") serve_delay_ms = std::atoi(next().c_str());
    else if (a == "--fd-report") report_fds(next());
    else if (a == "--addr-file") addr_file = next();
    else if (a == "--child-stop-timeout") opts.child_stop_timeout = std::chrono::milliseconds(std::atoi(next().c_str()));
    else if (a == "--no-accept") accept_on = false;
    else if (a == "--accept") accept_on = true;
    else if (a == "--never-ready") never_ready = true;
    else if (a == "--leak-fd") (void)::fcntl(::open("/dev/null", O_RDONLY), F_DUPFD, 100);  // no CLOEXEC, on purpose
    else return usage(("unknown flag " + a).c_str());
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  up::unique_fd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
  up::unique_fd handed(::eventfd(0, EFD_CLOEXEC));

  auto created = up::upgrader::create(opts);
  if (!created) {
    std::fprintf(stderr, "error: %s\n", created.error().message().c_str());
    return 2;
  }
  auto& u = *created.value();
  std::vector<up::unique_fd> fds;
  std::string addrs;
  for (auto& [name, addr] : listens) {
    auto fd = u.listen(name, addr);
    if (!fd) {
      std::fprintf(stderr, "error: listen %s: %s\n", name.c_str(), fd.error().message().c_str());
      return 2;
    }
    addrs += name + " " + up::local_address(fd.value().get()) + "\n";
    // Non-blocking: after a hand-over the new process may take the connection poll announced.
    ::fcntl(fd.value().get(), F_SETFL, ::fcntl(fd.value().get(), F_GETFL) | O_NONBLOCK);
    fds.push_back(std::move(fd.value()));
  }
  if (!addr_file.empty()) {
    std::ofstream(addr_file + ".tmp") << addrs;
    std::rename((addr_file + ".tmp").c_str(), addr_file.c_str());
  }
  u.on_handed_over([&](pid_t) {
    std::uint64_t one = 1;
    (void)!::write(handed.get(), &one, sizeof one);
  });
  const std::string me = std::to_string(::getpid()) + "\n";
  if (never_ready) {
    std::printf("never ready pid=%d\n", ::getpid());
    std::fflush(stdout);
    std::vector<up::unique_fd> held;
    while (true) {
      std::vector<pollfd> p{{sigfd.get(), POLLIN, 0}};
      for (auto& fd : fds) p.push_back({fd.get(), POLLIN, 0});
      if (::poll(p.data(), p.size(), -1) < 0) continue;
      bool stop = p[0].revents & POLLIN;
      // On SIGTERM every queued connection is taken too: the listeners are non-blocking.
      for (std::size_t i = 1; i < p.size(); ++i)
        if (stop || (p[i].revents & POLLIN))
          for (int c; (c = ::accept4(p[i].fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) held.emplace_back(c);
      if (!stop) continue;
      for (auto& c : held) (void)!::send(c.get(), me.data(), me.size(), MSG_NOSIGNAL);
      std::printf("never ready: stopped; answered %zu connection(s)\n", held.size());
      std::fflush(stdout);
      return 0;
    }
  }
  if (ready_delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(ready_delay_ms));
  (void)u.ready();
  std::printf("ready pid=%d from=%s\n", ::getpid(), std::string(up::to_string(u.inherited_from())).c_str());
  std::fflush(stdout);

  while (true) {
    std::vector<pollfd> p{{sigfd.get(), POLLIN, 0}, {handed.get(), POLLIN, 0}};
    if (accept_on)
      for (auto& fd : fds) p.push_back({fd.get(), POLLIN, 0});
    if (::poll(p.data(), p.size(), -1) < 0) continue;
    if (p[1].revents & POLLIN) {
      std::printf("handed over; exiting\n");
      std::fflush(stdout);
      fds.clear();  // stop accepting: the queue stays with the new process
      return 0;
    }
    if (p[0].revents & POLLIN) {
      signalfd_siginfo si{};
      (void)!::read(sigfd.get(), &si, sizeof si);
      if (si.ssi_signo == SIGHUP) {
        (void)u.start_upgrade([](graceful::result<pid_t> r) {
          std::printf("upgrade: %s\n", r ? ("ok pid=" + std::to_string(r.value())).c_str() : r.error().message().c_str());
          std::fflush(stdout);
        });
      } else {
        std::printf("stopping on signal %u\n", si.ssi_signo);
        std::fflush(stdout);
        u.cancel();
        return 0;
      }
    }
    for (std::size_t i = 2; i < p.size(); ++i) {
      if (!(p[i].revents & POLLIN)) continue;
      int c = ::accept4(p[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      if (serve_delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(serve_delay_ms));
      (void)!::send(c, me.data(), me.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
}
