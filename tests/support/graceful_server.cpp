#include "graceful_server.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>

#include <unistd.h>

#include "processes.hpp"

namespace graceful::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {
bool names(const std::vector<std::string>& args, const std::string& flag) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) { return a == flag || a.starts_with(flag + "="); });
}
} // namespace

server_proc::server_proc(std::vector<std::string> extra, const std::string& shell_prefix) {
  std::vector<std::string> argv{bin("graceful-server"), "--listen", "127.0.0.1:0"};
  if (!names(extra, "--threads")) argv.insert(argv.end(), {"--threads", "2"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (!shell_prefix.empty()) {
    std::string cmd = shell_prefix + " && exec";
    for (const auto& a : argv) cmd += " '" + a + "'";
    argv = {"/bin/sh", "-c", cmd};
  }
  proc = std::make_unique<child>(child::spec{argv});
  port = logged_port(*proc, "(port ", deadline::after(15s));
}

std::string server_proc::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

upgradable_server::upgradable_server() {
  become_subreaper();
  char tmpl[] = "/tmp/graceful-server-XXXXXX";
  if (::mkdtemp(tmpl)) dir_ = tmpl;
  fs::copy_file(bin("graceful-server"), dir_ / "graceful-server");
}

upgradable_server::~upgradable_server() {
  if (first_ && !first_->exited()) first_->signal(SIGKILL);
  first_.reset();
  for (int round = 0; round < 3; ++round)
    for (pid_t p : children_of(::getpid())) kill_and_reap(p);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::vector<std::string> upgradable_server::argv(std::vector<std::string> extra, const std::string& listen) const {
  std::vector<std::string> a{binary(), "--listen", listen};
  if (!names(extra, "--threads")) a.insert(a.end(), {"--threads", "1"});
  a.insert(a.end(), {"--pid-file", pid_file()});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

bool upgradable_server::start(std::vector<std::string> extra, std::vector<std::string> env) {
  return start_spec(child::spec{argv(std::move(extra)), std::move(env)});
}

bool upgradable_server::launch(child::spec spec) {
  first_ = std::make_unique<child>(std::move(spec));
  first_pid_ = first_->pid();
  port_ = logged_port(*first_, "(port ", deadline::after(15s));
  return port_ > 0;
}

bool upgradable_server::start_spec(child::spec spec) {
  // The pid file is written at ready(), after the listeners and the first accept: once it
  // names the process, connections are served.
  return launch(std::move(spec)) && eventually([&] { return pid() == first_pid_; }, deadline::after(15s));
}

pid_t upgradable_server::pid() const { return static_cast<pid_t>(std::atoi(read_file(pid_file()).c_str())); }

std::string upgradable_server::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

pid_t upgradable_server::upgrade(std::string* why) {
  auto fail = [&](std::string w) -> pid_t {
    if (why) *why = std::move(w);
    return 0;
  };
  pid_t old = pid();
  if (old <= 0 || ::kill(old, SIGHUP) != 0) return fail("no live process to SIGHUP (pid file: " + std::to_string(old) + ")");
  if (!eventually([&] { pid_t p = pid(); return p != old && p > 0; }, deadline::after(15s)))
    return fail("no new pid after SIGHUP to " + std::to_string(old));
  if (first_ && old == first_->pid()) {
    auto st = first_->wait(deadline::after(15s));
    if (st != 0) return fail("the first process exited " + (st ? std::to_string(*st) : std::string("not at all")));
  } else if (!wait_gone(old, deadline::after(15s))) {
    return fail("old process " + std::to_string(old) + " did not exit");
  }
  return pid();
}

} // namespace graceful::test
