// graceful-bench: HTTP/1.1 load at any service while a restart happens, with every request
// accounted for. See README.md, section graceful-bench, for the output and --json schema.
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <graceful/core/duration.hpp>

#include "action.hpp"
#include "load.hpp"
#include "report.hpp"
#include "url.hpp"

namespace gb = graceful::bench;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failures = 1;
constexpr int exit_usage = 2;

int usage_error(const std::string& msg) {
  fmt::print(stderr, "graceful-bench: {}\nRun with --help for usage.\n", msg);
  return exit_usage;
}

std::optional<std::chrono::nanoseconds> duration_flag(const std::string& text, const char* flag, std::string& why) {
  auto d = graceful::parse_duration(text);
  if (!d) why = fmt::format("{}: '{}' is not a duration (examples: 500ms, 5s, 1m30s)", flag, text);
  return d;
}

bool is_token(const std::string& s) {
  // RFC 9110 5.6.2 tchar: a method is a token.
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!(std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos)) return false;
  return true;
}

bool on_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string_view p = path;
  while (!p.empty()) {
    const auto colon = p.find(':');
    const std::string dir(p.substr(0, colon));
    if (!dir.empty() && ::access((dir + "/" + exe).c_str(), X_OK) == 0) return true;
    if (colon == std::string_view::npos) break;
    p.remove_prefix(colon + 1);
  }
  return false;
}

extern "C" void on_stop_signal(int) { gb::stop_requested.store(true, std::memory_order_relaxed); }

void raise_fd_limit() {
  // Each connection is an fd; the default soft limit (1024) is below what -c allows.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

} // namespace

int main(int argc, char** argv) {
  gb::bench_options o;
  std::string duration_text = "10s", timeout_text = "10s", fail_pause_text = "10ms", at_text, think_text;
  std::optional<double> rate;

  CLI::App app{"graceful-bench: HTTP/1.1 load that accounts for every request while a service restarts.\n"
               "Exit code: 0 if no request failed, 1 if any failed, 2 for bad usage.",
               "graceful-bench"};
  app.add_option("url", o.url, "http://host[:port][/path] to load")->required();
  app.add_option("-c,--connections", o.connections, "concurrent connections (default 10)");
  app.add_option("-d,--duration", duration_text, "how long to send requests, e.g. 30s (default 10s)");
  app.add_option("-t,--threads", o.threads, "worker threads (default: one per core, at most -c)");
  app.add_option("--rate", rate, "open loop: total requests per second, latency from the intended send time");
  app.add_flag("--close", o.close, "a new connection per request (Connection: close)");
  app.add_option("--think", think_text,
                 "closed loop with a pause of D (jittered 50%..150%) between a connection's requests, e.g. 200ms");
  app.add_flag("--strict", o.strict,
               "reuse keep-alive connections without checking them (a naive client): a close that arrived "
               "while idle fails the next request instead of reconnecting");
  app.add_flag("--h2", o.h2, "HTTP/2 over cleartext with prior knowledge (h2c); GOAWAY/REFUSED_STREAM retries are not failures");
  app.add_option("-m,--streams", o.streams, "--h2: concurrent streams per connection (default 1)");
  app.add_option("--method", o.method, "request method (default GET)");
  app.add_option("-H,--header", o.headers, "extra request header 'Name: value' (repeatable)");
  app.add_option("--body-size", o.body_size, "request body of N bytes, with Content-Length (default 0)");
  app.add_option("--timeout", timeout_text, "per-request timeout, connect included (default 10s)");
  app.add_option("--fail-pause", fail_pause_text,
                 "closed loop: a connection waits this long after a failed request (default 10ms)");
  app.add_option("--at", at_text, "when to run --exec, from the start, e.g. 3s");
  app.add_option("--exec", o.exec, "shell command run at --at (through /bin/sh -c), e.g. 'kill -HUP 123'");
  app.add_option("--json", o.json_path, "write the results as JSON to FILE ('-' = stdout)");
  app.add_option("--plot", o.plot_path, "draw latency and failures over time into FILE.png (gnuplot)");
  app.set_version_flag("--version", "graceful-bench 0.1.0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return usage_error(e.what());
  }

  std::string why;
  auto where = gb::parse_url(o.url, why);
  if (!where) return usage_error(fmt::format("bad URL '{}': {}", o.url, why));
  o.where = *where;
  auto d = duration_flag(duration_text, "-d", why);
  if (!d) return usage_error(why);
  if (d->count() <= 0) return usage_error("-d must be longer than 0");
  o.duration = *d;
  auto t = duration_flag(timeout_text, "--timeout", why);
  if (!t) return usage_error(why);
  if (t->count() <= 0) return usage_error("--timeout must be longer than 0");
  o.timeout = *t;
  auto fp = duration_flag(fail_pause_text, "--fail-pause", why);
  if (!fp) return usage_error(why);
  o.fail_pause = *fp;
  if (o.connections == 0) return usage_error("-c must be at least 1");
  if (o.connections > 1'000'000) return usage_error("-c is too large");
  if (rate) {
    if (!(*rate > 0) || !std::isfinite(*rate)) return usage_error("--rate must be a positive number of requests per second");
    o.rate = rate;
  }
  if (!think_text.empty()) {
    auto th = duration_flag(think_text, "--think", why);
    if (!th) return usage_error(why);
    if (th->count() <= 0) return usage_error("--think must be longer than 0");
    if (o.rate) return usage_error("--think is for the closed loop; --rate sets its own schedule");
    o.think = th;
  }
  if (!is_token(o.method)) return usage_error(fmt::format("--method '{}' is not an HTTP method token", o.method));
  for (const auto& h : o.headers) {
    const auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0 || !is_token(h.substr(0, colon)) ||
        h.find_first_of("\r\n") != std::string::npos)
      return usage_error(fmt::format("-H '{}' is not a 'Name: value' header", h));
  }
  if (o.streams == 0 || o.streams > 1000) return usage_error("-m must be between 1 and 1000");
  if (o.streams > 1 && !o.h2) return usage_error("-m (streams per connection) needs --h2");
  if (o.h2 && o.close) return usage_error("--close is for HTTP/1.1; an HTTP/2 connection carries many requests");
  if (o.body_size > (std::uint64_t{1} << 30)) return usage_error("--body-size is larger than 1 GiB");
  if (at_text.empty() != o.exec.empty()) return usage_error("--at and --exec go together");
  if (!at_text.empty()) {
    auto at = duration_flag(at_text, "--at", why);
    if (!at) return usage_error(why);
    if (*at >= o.duration)
      return usage_error(fmt::format("--at {} is not within the run (-d {})", at_text, duration_text));
    o.at = at;
  }
  // Outputs are checked before the run: a typo should not cost a whole load test.
  FILE* json_out = nullptr;
  if (!o.json_path.empty() && o.json_path != "-") {
    json_out = std::fopen(o.json_path.c_str(), "we");  // "e": O_CLOEXEC, --exec must not inherit it
    if (!json_out) return usage_error(fmt::format("--json: cannot write {}: {}", o.json_path, std::strerror(errno)));
  }
  if (!o.plot_path.empty()) {
    if (!on_path("gnuplot")) return usage_error("--plot needs gnuplot (Debian: apt-get install gnuplot-nox)");
    const auto parent = std::filesystem::absolute(o.plot_path).parent_path();
    if (!std::filesystem::is_directory(parent))
      return usage_error(fmt::format("--plot: directory {} does not exist", parent.string()));
  }

  raise_fd_limit();
  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::optional<gb::scheduled_action> action;
  gb::run_result run = gb::run_load(o, [&](gb::clock::time_point start) {
    if (o.at) action.emplace(o.exec, *o.at, start);
  });
  if (!run.error.empty()) {
    if (json_out) std::fclose(json_out);
    return usage_error(run.error);
  }
  std::optional<gb::action_record> record;
  if (action) {
    record = action->finish(gb::stop_requested.load());
  }

  const gb::report_input in{o, run, record};
  const std::string human = gb::human_report(in);
  std::fputs(human.c_str(), o.json_path == "-" ? stderr : stdout);
  int rc = gb::total_failures(run.stats) == 0 ? exit_ok : exit_failures;
  if (!o.json_path.empty()) {
    const std::string json = gb::json_report(in);
    FILE* f = json_out ? json_out : stdout;
    if (std::fputs(json.c_str(), f) < 0 || (json_out && std::fclose(json_out) != 0)) {
      fmt::print(stderr, "graceful-bench: writing {} failed\n", o.json_path);
      rc = exit_failures;
    }
  }
  if (!o.plot_path.empty()) {
    if (auto err = gb::write_plot(in, o.plot_path); !err.empty()) {
      fmt::print(stderr, "graceful-bench: --plot: {}\n", err);
      rc = exit_failures;
    }
  }
  return rc;
}
