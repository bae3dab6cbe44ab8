#include "graceful_run.hpp"

namespace graceful::test {

using namespace std::chrono_literals;

runner::runner(std::vector<std::string> run_args, std::vector<std::string> command, std::vector<int> keep_fds) {
  std::vector<std::string> argv{bin("graceful-run")};
  argv.insert(argv.end(), run_args.begin(), run_args.end());
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  proc_.emplace(child::spec{argv, {}, keep_fds});
}

runner::~runner() {
  if (!proc_->exited()) {
    proc_->signal(SIGTERM);
    if (!proc_->wait(deadline::after(5s))) proc_->signal(SIGKILL);
    proc_->wait(deadline::after(2s));
  }
  for (pid_t p : pids_in(output(), "worker ", " started"))
    if (alive(p)) ::kill(p, SIGKILL);
}

bool runner::wait_for(const std::string& needle, std::chrono::milliseconds d) const {
  return proc_->wait_for_output(needle, deadline::after(d));
}

bool runner::wait_count(const std::string& needle, int n, std::chrono::milliseconds d) const {
  return eventually([&] { return count_of(output(), needle) >= n; }, deadline::after(d));
}

int runner::port(const std::string& name) const {
  return logged_port(*proc_, "listening " + name + "=127.0.0.1:", deadline::after(5s));
}

} // namespace graceful::test
