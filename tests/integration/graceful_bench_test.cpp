// graceful-bench driven from outside, against servers that fail in one chosen way each:
// every request must land in exactly one class, and the exit code must say whether any failed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "graceful_server.hpp"
#include "process.hpp"
#include "processes.hpp"
#include "upgrade_load_support.hpp"

namespace {

using namespace std::chrono_literals;
using graceful::deadline;
namespace gt = graceful::test;
namespace ul = graceful::test::upgrade_load;
namespace fs = std::filesystem;

/// A fresh temporary directory removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/graceful-bench-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// The number right after the first `prefix` at or after `from` in `text`, or -1. (Plain string
/// search, no std::regex: GCC 12 reports a false maybe-uninitialized in <regex> under ASan.)
double number_after(const std::string& text, const std::string& prefix, std::size_t from = 0,
                    std::size_t* end = nullptr) {
  const auto at = text.find(prefix, from);
  if (at == std::string::npos) return -1;
  const char* begin = text.c_str() + at + prefix.size();
  char* stop = nullptr;
  const double v = std::strtod(begin, &stop);
  if (stop == begin) return -1;
  if (end) *end = static_cast<std::size_t>(stop - text.c_str());
  return v;
}

/// A free port below Linux's default ephemeral range (32768-60999), so that no outgoing
/// connection can hold it while a server restarts on it (a client's reconnect loop could
/// otherwise connect to itself from that very port). Other tests bind port 0, which the
/// kernel takes from the ephemeral range, so they never race for these.
int low_port() {
  static unsigned seed = static_cast<unsigned>(::getpid());
  for (int attempt = 0; attempt < 200; ++attempt) {
    seed = seed * 1103515245u + 12345u;
    const int port = 20000 + static_cast<int>((seed >> 8) % 12000);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return port;
  }
  throw std::runtime_error("no free port in 20000-31999 after 200 tries");
}

/// A misbehaving-http-server child on a free port.
struct test_server {
  std::unique_ptr<gt::child> proc;
  int port = 0;
  explicit test_server(const std::string& mode, int fixed_port = 0, const std::string& pid_file = "",
                       std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{gt::bin("misbehaving-http-server"), "--mode", mode, "--port",
                                  std::to_string(fixed_port)};
    if (!pid_file.empty()) argv.insert(argv.end(), {"--pid-file", pid_file});
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<gt::child>(gt::child::spec{argv});
    EXPECT_TRUE(proc->wait_for_output("listening on", deadline::after(5s))) << proc->output();
    port = static_cast<int>(number_after(proc->output(), "listening on 127.0.0.1:"));
  }
  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
};

/// One finished graceful-bench run.
struct bench_run {
  int exit_code = -1;
  std::string output;  ///< stdout + stderr
  std::string json;    ///< the --json document

  /// A number from the JSON: `key` is a top-level key, or "failures.<class>" for the
  /// top-level failures object (the first occurrence, which precedes action/timeline).
  double number(const std::string& key) const {
    std::string scope = json;
    std::string k = key;
    if (auto dot = key.find('.'); dot != std::string::npos) {
      const auto open = json.find("\"" + key.substr(0, dot) + "\": {");
      if (open == std::string::npos) return -1;
      scope = json.substr(open, json.find('}', open) - open);
      k = key.substr(dot + 1);
    }
    return number_after(scope, "\"" + k + "\": ");
  }
  bool has(const std::string& key) const { return json.find("\"" + key + "\":") != std::string::npos; }
};

bench_run run_bench(std::vector<std::string> args, std::chrono::seconds limit = 20s) {
  temp_dir dir;
  const auto json_path = (dir.path / "out.json").string();
  std::vector<std::string> argv{gt::bin("graceful-bench")};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--json", json_path});
  gt::child c({argv});
  bench_run r;
  auto status = c.wait(deadline::after(limit));
  EXPECT_TRUE(status.has_value()) << "graceful-bench did not finish: " << c.output();
  r.exit_code = status.value_or(-1);
  r.output = c.output();
  r.json = slurp(json_path);
  return r;
}

const std::vector<std::string> failure_classes{"http_error", "connect_refused", "connection_reset",
                                               "closed_before_response", "timeout", "other"};

const std::vector<std::string> reconnect_causes{"closed_while_idle", "connection_close", "after_failure"};

/// requests == ok + failures.total == ok + sum of the failure classes.
void expect_consistent(const bench_run& r) {
  double classes = 0;
  for (const auto& k : failure_classes) {
    const double v = r.number("failures." + k);
    EXPECT_GE(v, 0) << "missing failures." << k << "\n" << r.json;
    classes += v;
  }
  EXPECT_EQ(r.number("failures.total"), classes) << r.json;
  EXPECT_EQ(r.number("requests"), r.number("ok") + classes) << r.json;
  // Reconnects add up over their causes and never exceed the connections opened.
  double causes = 0;
  for (const auto& k : reconnect_causes) {
    const double v = r.number("connections." + k);
    EXPECT_GE(v, 0) << "missing connections.reconnects." << k << "\n" << r.json;
    causes += v;
  }
  EXPECT_EQ(r.number("connections.total"), causes) << r.json;
  EXPECT_LE(causes, r.number("connections.opened")) << r.json;
}

/// Runs a short load against a server in `mode` and checks that every failure is of `cls`.
bench_run expect_only_class(const std::string& mode, const std::string& cls, std::vector<std::string> extra = {}) {
  test_server s(mode);
  std::vector<std::string> args{s.url(), "-c", "4", "-t", "1", "-d", "400ms"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_bench(args);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_GT(r.number("failures." + cls), 0) << r.output;
  EXPECT_EQ(r.number("failures.total"), r.number("failures." + cls)) << r.json;
  expect_consistent(r);
  return r;
}

TEST(graceful_bench, counts_every_response_of_a_healthy_server_as_ok_and_exits_0) {
  test_server s("ok");
  auto r = run_bench({s.url(), "-c", "4", "-d", "500ms"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(r.number("ok"), 100) << r.output;
  EXPECT_EQ(r.number("failures.total"), 0);
  EXPECT_EQ(r.number("requests"), r.number("ok"));
  expect_consistent(r);
  EXPECT_NE(r.output.find("no request failed"), std::string::npos) << r.output;
}

TEST(graceful_bench, json_has_every_documented_key) {
  test_server s("ok");
  auto r = run_bench({s.url(), "-c", "2", "-d", "1200ms", "--at", "200ms", "--exec", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* key : {"tool", "schema", "url", "options", "elapsed_s", "requests", "rps", "ok", "failures",
                          "status_codes", "latency_ms", "longest_without_success_ms", "action", "timeline",
                          "p50", "p90", "p99", "p99_9", "max", "total", "window", "started_s", "ended_s", "second",
                          "connections", "opened", "reconnects", "think_s", "strict", "connections_opened"})
    EXPECT_TRUE(r.has(key)) << key << "\n" << r.json;
  for (const auto& k : failure_classes) EXPECT_TRUE(r.has(k)) << k;
  for (const auto& k : reconnect_causes) EXPECT_TRUE(r.has(k)) << k;
  EXPECT_EQ(r.number("schema"), 2) << r.json;
  EXPECT_GT(r.number("latency_ms.p99"), 0);
  EXPECT_GE(r.number("latency_ms.max"), r.number("latency_ms.p99"));
  EXPECT_GE(r.number("latency_ms.p99"), r.number("latency_ms.p50"));
  // The timeline covers the run second by second and adds up to the total.
  double sum = 0;
  int seconds = 0;
  std::size_t pos = r.json.find("\"timeline\"");
  for (;;) {
    const double second = number_after(r.json, "{\"second\": ", pos, &pos);
    if (second < 0) break;
    EXPECT_EQ(second, seconds);
    sum += number_after(r.json, "\"requests\": ", pos, &pos);
    ++seconds;
  }
  EXPECT_EQ(seconds, 2);
  EXPECT_EQ(sum, r.number("requests"));
}

// Schema 2, checked by a real JSON parser: every schema 1 field is still there with its type,
// and the connection accounting adds up (over causes, over the timeline).
constexpr const char* schema2_check = R"PY(
import json, sys
d = json.load(open(sys.argv[1]))
num = (int, float)
def need(obj, key, types, where):
    assert key in obj, f"{where}: missing {key}"
    assert isinstance(obj[key], types) and not isinstance(obj[key], bool) or types is bool, f"{where}.{key}: {obj[key]!r}"
    return obj[key]
assert d["tool"] == "graceful-bench" and d["schema"] == 2, d.get("schema")
o = d["options"]
for k in ("connections", "threads", "duration_s", "body_size", "timeout_s", "fail_pause_s"): need(o, k, num, "options")
for k in ("keep_alive", "strict"): assert isinstance(o[k], bool), k
assert o["rate"] is None or isinstance(o["rate"], num)
assert o["think_s"] is None or isinstance(o["think_s"], num)
assert isinstance(o["method"], str)
for k in ("start_unix_s", "elapsed_s", "requests", "rps", "ok", "longest_without_success_ms", "longest_without_success_from_s"):
    need(d, k, num, "top")
classes = ("http_error", "connect_refused", "connection_reset", "closed_before_response", "timeout", "other")
causes = ("closed_while_idle", "connection_close", "after_failure")
def failures(f, where):
    for k in classes: need(f, k, int, where)
    assert f["total"] == sum(f[k] for k in classes), where
    return f["total"]
assert d["requests"] == d["ok"] + failures(d["failures"], "failures")
for k in ("count", "p50", "p90", "p99", "p99_9", "max", "mean"): need(d["latency_ms"], k, num, "latency_ms")
assert isinstance(d["status_codes"], dict)
c = d["connections"]
need(c, "opened", int, "connections")
def reconnects(r, where):
    for k in causes: need(r, k, int, where)
    assert r["total"] == sum(r[k] for k in causes), where
    return r["total"]
assert reconnects(c["reconnects"], "connections.reconnects") <= c["opened"]
t = d["timeline"]
assert len(t) >= 1 and [s["second"] for s in t] == list(range(len(t)))
for s in t:
    for k in ("requests", "ok", "p50_ms", "p99_ms", "max_ms", "connections_opened"): need(s, k, num, "timeline")
    assert s["requests"] == s["ok"] + failures(s["failures"], "timeline.failures")
    reconnects(s["reconnects"], "timeline.reconnects")
assert sum(s["requests"] for s in t) == d["requests"]
assert sum(s["connections_opened"] for s in t) == c["opened"], "timeline connections"
for k in causes:
    assert sum(s["reconnects"][k] for s in t) == c["reconnects"][k], k
a = d["action"]
assert a is None or (isinstance(a["command"], str) and "window" in a)
print("schema 2 ok", c["opened"], c["reconnects"]["total"])
)PY";

TEST(graceful_bench, json_schema_2_parses_and_its_connection_accounting_adds_up) {
  // idle-close with think time: a run with reconnects in it, so the sums are not of zeros.
  test_server s("idle-close");
  auto r = run_bench({s.url(), "-c", "3", "-t", "1", "-d", "1200ms", "--think", "100ms", "--at", "300ms",
                      "--exec", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  temp_dir dir;
  const auto json = dir.path / "run.json", script = dir.path / "check.py";
  std::ofstream(json) << r.json;
  std::ofstream(script) << schema2_check;
  gt::child py({{"/usr/bin/python3", script.string(), json.string()}});
  EXPECT_EQ(py.wait(deadline::after(20s)), 0) << py.output() << "\n" << r.json;
  EXPECT_NE(py.output().find("schema 2 ok"), std::string::npos) << py.output();
  EXPECT_GT(r.number("connections.total"), 0) << r.json;
  // A document whose counts do not add up fails the same check (the check can fail).
  std::ofstream(json) << std::string(r.json).replace(r.json.find("\"opened\": "), 10, "\"opened\": 100000");
  gt::child bad({{"/usr/bin/python3", script.string(), json.string()}});
  EXPECT_NE(bad.wait(deadline::after(20s)), 0) << bad.output();
}

TEST(graceful_bench, counts_connect_refused_when_nothing_listens) {
  ul::refusing_port nobody;  // bound, never listening: connects are refused, nobody takes it
  ASSERT_GT(nobody.port, 0);
  auto r = run_bench({"http://127.0.0.1:" + std::to_string(nobody.port) + "/", "-c", "2", "-d", "300ms"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_GT(r.number("failures.connect_refused"), 0);
  EXPECT_EQ(r.number("requests"), r.number("failures.connect_refused")) << r.json;
  expect_consistent(r);
}

TEST(graceful_bench, counts_connection_reset_when_the_server_answers_with_rst) {
  expect_only_class("reset", "connection_reset");
}

TEST(graceful_bench, counts_closed_before_response_when_the_server_closes_without_answering) {
  expect_only_class("close", "closed_before_response");
}

TEST(graceful_bench, counts_a_truncated_response_as_closed_before_response) {
  expect_only_class("partial", "closed_before_response");
}

TEST(graceful_bench, counts_timeout_when_the_server_never_answers) {
  auto r = expect_only_class("hang", "timeout", {"--timeout", "100ms"});
  // 4 connections, each stuck 100 ms per request in 400 ms: a handful, not thousands.
  EXPECT_LE(r.number("failures.timeout"), 4 * 5) << r.json;
}

TEST(graceful_bench, counts_http_errors_by_status_code) {
  auto r = expect_only_class("status500", "http_error");
  EXPECT_NE(r.json.find(R"("status_codes": {"500": )"), std::string::npos) << r.json;
  EXPECT_NE(r.output.find("500: "), std::string::npos) << r.output;
}

TEST(graceful_bench, counts_an_unparsable_response_as_other) {
  expect_only_class("garbage", "other");
}

TEST(graceful_bench, connection_close_on_every_response_is_not_a_failure) {
  test_server s("close-each");
  auto r = run_bench({s.url(), "-c", "4", "-d", "500ms"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(r.number("ok"), 20);
  EXPECT_EQ(r.number("failures.total"), 0) << r.json;
  expect_consistent(r);
}

TEST(graceful_bench, new_connection_per_request_with_close_flag) {
  test_server s("ok");
  auto r = run_bench({s.url(), "-c", "2", "-d", "300ms", "--close"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(r.number("ok"), 10);
  EXPECT_NE(r.json.find(R"("keep_alive": false)"), std::string::npos);
  // A connection per request is the client's choice, not a reconnect.
  EXPECT_EQ(r.number("connections.opened"), r.number("requests")) << r.json;
  EXPECT_EQ(r.number("connections.total"), 0) << r.json;
}

TEST(graceful_bench, a_connection_closed_right_after_a_response_ends_in_a_reconnect_or_a_failure_never_both) {
  // The server answers one request per connection without `Connection: close` and then closes.
  // Whether the FIN is in before the next request goes is a race: seen, the client reconnects
  // (not a failure); not seen, the request written on the closing connection is lost and
  // counted, never retried. Each answered connection ends in exactly one of the two.
  test_server s("idle-close");
  auto r = run_bench({s.url(), "-c", "2", "-t", "1", "-d", "500ms"});
  const double lost = r.number("failures.connection_reset") + r.number("failures.closed_before_response");
  EXPECT_EQ(r.number("failures.total"), lost) << r.json;
  EXPECT_EQ(r.exit_code, lost > 0 ? 1 : 0) << r.output;
  EXPECT_GT(r.number("ok"), 10) << r.json;
  EXPECT_NEAR(r.number("ok"), r.number("connections.closed_while_idle") + lost, 2) << r.json;
  EXPECT_EQ(r.number("connections.connection_close"), 0) << r.json;
  expect_consistent(r);
}

TEST(graceful_bench, an_idle_connection_the_server_closed_is_a_reconnect_not_a_failure) {
  // A keep-alive server that closes a connection as soon as it has answered (an idle timeout
  // of 0: the FIN leaves right after the response), clients that pause 75-225 ms between
  // requests: the pool holds closed connections, as Go's and urllib3's do. A careful client
  // sees the FIN before reuse and opens a new connection.
  // (idle-timeout mode with a real timeout would race the pause on a loaded machine.)
  test_server s("idle-close");
  auto r = run_bench({s.url(), "-c", "4", "-t", "1", "-d", "1500ms", "--think", "150ms"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.number("failures.total"), 0) << r.json;
  EXPECT_GT(r.number("connections.closed_while_idle"), 0) << r.json;
  EXPECT_EQ(r.number("connections.after_failure"), 0) << r.json;
  // Each of the 4 clients opened one connection, plus one per reconnect.
  EXPECT_EQ(r.number("connections.opened"), 4 + r.number("connections.total")) << r.json;
  EXPECT_NE(r.output.find("closed while idle"), std::string::npos) << r.output;
  expect_consistent(r);
}

TEST(graceful_bench, strict_counts_a_request_on_an_idle_closed_connection_as_a_failure) {
  // The same server and pauses with --strict (reuse without checking, a naive client): the
  // request goes on the closed connection and is lost.
  test_server s("idle-close");
  auto r = run_bench({s.url(), "-c", "4", "-t", "1", "-d", "1500ms", "--think", "150ms", "--strict"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const double lost = r.number("failures.connection_reset") + r.number("failures.closed_before_response");
  EXPECT_GT(lost, 0) << r.json;
  EXPECT_EQ(r.number("failures.total"), lost) << r.json;
  EXPECT_EQ(r.number("connections.closed_while_idle"), 0) << r.json;
  EXPECT_NE(r.json.find(R"("strict": true)"), std::string::npos) << r.json;
  expect_consistent(r);
}

TEST(graceful_bench, a_request_written_before_any_sign_of_close_that_gets_eof_is_a_failure) {
  // The server answers the first request keep-alive, then reads the second completely and
  // closes without answering: nothing was readable when the client wrote, so this is the real
  // race a restart can cause, and a careful client loses the request too.
  auto r = expect_only_class("close-second", "closed_before_response");
  EXPECT_NEAR(r.number("ok"), r.number("failures.closed_before_response"), 4) << r.json;
  EXPECT_EQ(r.number("connections.closed_while_idle"), 0) << r.json;
  EXPECT_GT(r.number("connections.after_failure"), 0) << r.json;
}

TEST(graceful_bench, a_request_written_before_any_sign_of_close_that_gets_rst_is_a_failure) {
  auto r = expect_only_class("reset-second", "connection_reset");
  EXPECT_NEAR(r.number("ok"), r.number("failures.connection_reset"), 4) << r.json;
  EXPECT_EQ(r.number("connections.closed_while_idle"), 0) << r.json;
}

TEST(graceful_bench, think_time_spreads_a_connections_requests) {
  test_server s("ok");
  auto r = run_bench({s.url(), "-c", "4", "-t", "1", "-d", "2s", "--think", "200ms"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // Each pause is at least 100 ms (200 ms - 50%): at most 2 s / 100 ms + 1 requests per
  // connection; without --think the same run sends thousands.
  EXPECT_LE(r.number("requests"), 4 * 21) << r.json;
  EXPECT_GE(r.number("requests"), 4) << r.json;
  // Spread over the run, not sent at once: both seconds of the timeline have requests.
  std::size_t pos = r.json.find("\"timeline\"");
  int busy_seconds = 0;
  for (;;) {
    if (number_after(r.json, "{\"second\": ", pos, &pos) < 0) break;
    if (number_after(r.json, "\"requests\": ", pos, &pos) > 0) ++busy_seconds;
  }
  EXPECT_EQ(busy_seconds, 2) << r.json;
  // Idle between requests, yet kept alive: one connection per client.
  EXPECT_EQ(r.number("connections.opened"), 4) << r.json;
  EXPECT_NE(r.json.find(R"("think_s": 0.200)"), std::string::npos) << r.json;
  expect_consistent(r);
}

TEST(graceful_bench, connection_close_answers_are_counted_as_reconnects) {
  test_server s("close-each");
  auto r = run_bench({s.url(), "-c", "2", "-t", "1", "-d", "300ms"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(r.number("connections.connection_close"), 10) << r.json;
  EXPECT_EQ(r.number("connections.opened"), 2 + r.number("connections.connection_close")) << r.json;
  EXPECT_EQ(r.number("connections.closed_while_idle"), 0) << r.json;
  expect_consistent(r);
}

TEST(graceful_bench, open_loop_sends_at_the_requested_rate) {
  test_server s("ok");
  auto r = run_bench({s.url(), "-c", "4", "-d", "1s", "--rate", "200"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.number("requests"), 200) << r.json;
}

TEST(graceful_bench, runs_the_exec_command_at_the_requested_time) {
  test_server s("ok");
  temp_dir dir;
  const auto marker = dir.path / "touched";
  auto r = run_bench({s.url(), "-c", "2", "-d", "800ms", "--at", "300ms", "--exec", "touch " + marker.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(marker));
  const double started = number_after(r.json, "\"started_s\": ");
  const double ended = number_after(r.json, "\"ended_s\": ");
  EXPECT_EQ(number_after(r.json, "\"exit_code\": "), 0) << r.json;
  EXPECT_GE(started, 0.3) << r.json;
  EXPECT_GE(ended, started) << r.json;
}

TEST(graceful_bench, json_dash_puts_the_document_on_stdout_and_the_table_on_stderr) {
  test_server s("ok");
  // The --exec command's own stdout must not end up inside the JSON either (it prints "noise";
  // the command line itself, which the JSON records, does not contain that word).
  gt::child c({{"/bin/sh", "-c",
                gt::bin("graceful-bench") + " " + s.url() + " -c 2 -d 300ms -H 'X-Test: 1' --at 100ms --exec 'printf no%s ise'" +
                    " --json - 2>/dev/null"}});
  ASSERT_EQ(c.wait(deadline::after(10s)), 0) << c.output();
  const std::string out = c.output();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front(), '{') << out;
  EXPECT_EQ(out.find("noise"), std::string::npos) << out;
  EXPECT_EQ(out.find("timeline (requests"), std::string::npos) << out;
  EXPECT_NE(out.find("\"timeline\": ["), std::string::npos) << out;
}

TEST(graceful_bench, sigint_stops_the_load_early_reports_and_skips_a_pending_exec) {
  test_server s("ok");
  temp_dir dir;
  const auto marker = dir.path / "touched";
  gt::child c({{gt::bin("graceful-bench"), s.url(), "-c", "2", "-d", "60s", "--at", "50s", "--exec",
                "touch " + marker.string()}});
  // The load is running once the server has answered its first request.
  ASSERT_TRUE(s.proc->wait_for_output("served first request", deadline::after(10s))) << s.proc->output();
  c.signal(SIGINT);
  EXPECT_EQ(c.wait(deadline::after(10s)), 0) << c.output();  // all requests so far were ok
  EXPECT_NE(c.output().find("no request failed"), std::string::npos) << c.output();
  EXPECT_NE(c.output().find("not run"), std::string::npos) << c.output();
  EXPECT_FALSE(fs::exists(marker));
}

TEST(graceful_bench, bad_usage_exits_2_with_a_message) {
  test_server s("ok");
  const std::vector<std::vector<std::string>> bad{
      {},
      {s.url(), "-c", "0"},
      {s.url(), "-d", "5 parsecs"},
      {s.url(), "-d", "0"},
      {"https://127.0.0.1/"},
      {"127.0.0.1:80"},
      {s.url(), "--rate", "-5"},
      {s.url(), "--at", "1s"},
      {s.url(), "--exec", "true"},
      {s.url(), "-d", "1s", "--at", "2s", "--exec", "true"},
      {s.url(), "--method", "GE T"},
      {s.url(), "--no-such-flag"},
      {s.url(), "-H", "no colon here"},
      {s.url(), "--timeout", "0"},
      {s.url(), "--json", "/nonexistent-dir/x.json"},
      {s.url(), "--think", "0"},
      {s.url(), "--think", "soon"},
      {s.url(), "--think", "100ms", "--rate", "10"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> argv{gt::bin("graceful-bench")};
    argv.insert(argv.end(), args.begin(), args.end());
    gt::child c({argv});
    EXPECT_EQ(c.wait(deadline::after(10s)), 2) << args.size() << " args: " << c.output();
    EXPECT_NE(c.output().find("graceful-bench"), std::string::npos) << c.output();
  }
}

TEST(graceful_bench, counts_failures_across_kill_9_and_restart_of_the_server) {
  temp_dir dir;
  const auto pid1 = (dir.path / "first.pid").string();
  const auto pid2 = (dir.path / "second.pid").string();
  // A port below the ephemeral range: while the server is down, a client's connect() must not
  // be able to take the port for itself.
  test_server s("ok", low_port(), pid1);
  const std::string restart = "kill -9 $(cat " + pid1 + ") && exec " + gt::bin("misbehaving-http-server") +
                              " --mode ok --port " + std::to_string(s.port) + " --pid-file " + pid2 +
                              " >/dev/null 2>&1 &";
  auto r = run_bench({s.url(), "-c", "8", "-d", "2s", "--at", "700ms", "--exec", restart});
  // Leave no process behind: the restarted server is not ours to reap, so kill it by pid.
  gt::eventually([&] { return fs::exists(pid2) && !slurp(pid2).empty(); }, deadline::after(2s));
  if (fs::exists(pid2)) ::kill(std::stoi(slurp(pid2)), SIGKILL);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const double lost = r.number("failures.connection_reset") + r.number("failures.closed_before_response") +
                      r.number("failures.connect_refused");
  EXPECT_GT(lost, 0) << r.output;
  EXPECT_EQ(r.number("failures.total"), lost) << r.json;
  // The restarted server answers: the last second of the run is ok again.
  const auto second1 = r.json.find("{\"second\": 1,");
  ASSERT_NE(second1, std::string::npos) << r.json;
  EXPECT_GT(number_after(r.json, "\"ok\": ", second1), 0) << r.output;
  expect_consistent(r);
}

// graceful-server's SIGHUP upgrade (issue 4): an upgrade under load must cost no request at all.
TEST(graceful_bench, counts_zero_failures_across_a_graceful_server_sighup_upgrade) {
  gt::upgradable_server server;
  ASSERT_TRUE(server.start()) << server.first().output();
  const pid_t before = server.pid();
  auto r = run_bench({server.url("/"), "-c", "16", "-d", "3s", "--at", "1s", "--exec",
                      "kill -HUP $(cat " + server.pid_file() + ")"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.number("failures.total"), 0) << r.output;
  EXPECT_GT(r.number("ok"), 100);
  // The upgrade happened (a new pid serves) and moved every connection once.
  EXPECT_TRUE(gt::eventually([&] { return server.pid() != before && server.pid() > 0; }, deadline::after(15s)));
  EXPECT_GE(r.number("connections.total"), 16) << r.json;
}

} // namespace
