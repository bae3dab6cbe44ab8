#include "graceful_run.hpp"

#include "load.hpp"

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

restarts_seen restarts_under_load(runner& r, int port, int n) {
  restarts_seen seen;
  load keep_alive(port, 4, true);
  load close(port, 4, false);
  auto answered = [&] { return keep_alive.count(outcome::ok) + close.count(outcome::ok); };
  if (!eventually([&] { return keep_alive.count(outcome::ok) > 50 && close.count(outcome::ok) > 50; },
                  deadline::after(10s))) {
    seen.error = "the load never got 50 answers of each kind before the first SIGHUP";
  } else {
    for (int i = 1; i <= n && seen.error.empty(); ++i) {
      r.proc().signal(SIGHUP);
      if (!r.wait_count("upgrade complete", i, 10s)) {
        seen.error = "restart " + std::to_string(i) + " did not complete within 10 s";
        break;
      }
      // Let the new worker take load before the next restart.
      long before = answered();
      if (!eventually([&] { return answered() > before + 20; }, deadline::after(10s)))
        seen.error = "no load answered after restart " + std::to_string(i);
    }
  }
  keep_alive.stop();
  close.stop();
  seen.done = seen.error.empty();
  seen.keep_alive_failures = keep_alive.failures();
  seen.close_failures = close.failures();
  seen.summary = "keep-alive " + keep_alive.summary() + "| close " + close.summary();
  return seen;
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
