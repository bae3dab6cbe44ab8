// graceful-server from the outside, driven by clients nobody here wrote: curl and wrk.
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <csignal>
#include <unistd.h>

#include <gtest/gtest.h>

#include "graceful_server.hpp"
#include "http_client.hpp"
#include "process.hpp"

using namespace graceful::test;
using graceful::deadline;
using namespace std::chrono_literals;

namespace {

struct ran {
  std::optional<int> status;
  std::string output;
};

ran run(std::vector<std::string> argv, deadline d = deadline::after(20s)) {
  child c({std::move(argv)});
  auto st = c.wait(d);
  return {st, c.output()};
}

/// The absolute path of a program on PATH (child uses execve, which does not search PATH).
std::string program(const std::string& name) {
  auto p = find_program(name);
  return p.empty() ? "/usr/bin/" + name : p;
}

/// curl prints the body, then a line with the status code.
ran curl(std::vector<std::string> args) {
  std::vector<std::string> argv{program("curl"), "-sS", "--max-time", "10", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

} // namespace

TEST(graceful_server, help_and_version_exit_0) {
  auto h = run({bin("graceful-server"), "--help"});
  EXPECT_EQ(h.status, 0);
  EXPECT_NE(h.output.find("--listen"), std::string::npos);
  EXPECT_NE(h.output.find("--shutdown-timeout"), std::string::npos);
  auto v = run({bin("graceful-server"), "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_NE(v.output.find("graceful-server "), std::string::npos);
}

TEST(graceful_server, bad_flags_give_a_clear_message_and_exit_2) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--bogus"}, {"--drain-delay", "5 parsecs"}, {"--shutdown-timeout", "-1s"},
           {"--log-level", "loud"}, {"--threads", "many"}, {"--listen", "not-an-address"},
           // 0 is no time to stop in: once an uncaught invalid_argument from the lifecycle (abort).
           {"--shutdown-timeout", "0"}, {"--upgrade-timeout", "0"}, {"--linger-timeout", "long"},
           {"--http2", "maybe"}}) {
    args.insert(args.begin(), bin("graceful-server"));
    auto r = run(args);
    EXPECT_EQ(r.status, 2) << args[1] << ": " << r.output;
    EXPECT_FALSE(r.output.empty()) << args[1];
  }
}

TEST(graceful_server, serves_every_route_to_curl) {
  server_proc s;
  auto root = curl({s.url("/")});
  EXPECT_EQ(root.output, "Hello, World!\n\n200");
  auto echo = curl({"--data-binary", "ping pong", s.url("/echo")});
  EXPECT_EQ(echo.output, "ping pong\n200");
  auto slow = curl({s.url("/slow?ms=50")});
  EXPECT_TRUE(ends_with(slow.output, "\n200")) << slow.output;
  auto stream = curl({"-N", s.url("/stream?chunks=3&ms=10")});
  EXPECT_EQ(stream.output, "chunk 0\nchunk 1\nchunk 2\n\n200");
  EXPECT_TRUE(ends_with(curl({s.url("/healthz")}).output, "200"));
  EXPECT_TRUE(ends_with(curl({s.url("/readyz")}).output, "200"));
  auto metrics = curl({s.url("/metrics")});
  EXPECT_NE(metrics.output.find("graceful_http_requests_total{code=\"200\"}"), std::string::npos) << metrics.output;
  EXPECT_NE(metrics.output.find("graceful_lifecycle_phase{phase=\"running\"} 1"), std::string::npos);
  EXPECT_NE(metrics.output.find("graceful_http_open_connections"), std::string::npos);
  // curl sends Expect: 100-continue for bodies over 1 KiB.
  std::string big(300 * 1024, 'z');
  auto path = std::filesystem::temp_directory_path() / ("graceful-big-" + std::to_string(getpid()));
  std::ofstream(path) << big;
  auto large = curl({"--data-binary", "@" + path.string(), "-o", "/dev/null", s.url("/echo")});
  std::filesystem::remove(path);
  EXPECT_EQ(large.output, "\n200");
  EXPECT_TRUE(ends_with(curl({s.url("/slow?ms=bad")}).output, "400"));
  EXPECT_TRUE(ends_with(curl({s.url("/nope")}).output, "404"));
}

TEST(graceful_server, sigterm_finishes_in_flight_request_and_exits_0_removing_pid_file) {
  auto pid_file = std::filesystem::temp_directory_path() / ("graceful-server-test-" + std::to_string(getpid()) + ".pid");
  server_proc s({"--pid-file", pid_file.string()});
  // The pid file is written once the server is ready, which may be just after it answers.
  long pid = 0;
  eventually([&] {
    std::ifstream pf(pid_file);
    return pf >> pid && pid == s.proc->pid();
  }, deadline::after(5s));
  EXPECT_EQ(pid, s.proc->pid());
  child slow({{program("curl"), "-sS", "--max-time", "10", "-w", "\n%{http_code}", s.url("/slow?ms=600")}});
  // Wait until the request is in flight, as the server itself reports it.
  ASSERT_TRUE(eventually([&] {
    auto m = curl({s.url("/metrics")}).output;
    return m.find("graceful_http_in_flight_requests 2") != std::string::npos;
  }, deadline::after(5s)));
  s.proc->signal(SIGTERM);
  EXPECT_EQ(slow.wait(deadline::after(10s)), 0);
  EXPECT_EQ(slow.output(), "slept 600 ms\n\n200");
  EXPECT_EQ(s.proc->wait(deadline::after(10s)), 0) << s.proc->output();
  EXPECT_FALSE(std::filesystem::exists(pid_file));
}

TEST(graceful_server, sigterm_that_cuts_a_request_at_the_deadline_exits_1_and_says_how_many) {
  server_proc s({"--shutdown-timeout", "1s"});
  child slow({{program("curl"), "-sS", "--max-time", "30", s.url("/slow?ms=8000")}});
  std::string before;
  ASSERT_TRUE(eventually([&] {
    before = curl({s.url("/metrics")}).output;
    return before.find("graceful_http_in_flight_requests 2") != std::string::npos;
  }, deadline::after(5s)));
  // The metric exists before the cut (after it the process is gone): nothing cut yet.
  EXPECT_NE(before.find("graceful_http_cut_requests_total 0\n"), std::string::npos) << before;
  EXPECT_NE(before.find("graceful_http_cut_connections_total 0\n"), std::string::npos) << before;
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(deadline::after(15s)), 1) << s.proc->output();
  EXPECT_NE(s.proc->output().find("the shutdown deadline cut 1 requests in flight on 1 connections"), std::string::npos)
      << s.proc->output();
  EXPECT_NE(slow.wait(deadline::after(15s)), 0);  // the client saw the cut: no response
}

TEST(graceful_server, sigterm_that_cuts_an_http2_stream_at_the_deadline_exits_1_and_counts_it) {
  server_proc s({"--shutdown-timeout", "1s"});
  child slow({{program("curl"), "-sS", "--http2-prior-knowledge", "--max-time", "30", s.url("/slow?ms=8000")}});
  ASSERT_TRUE(eventually([&] {
    return curl({s.url("/metrics")}).output.find("graceful_http_in_flight_requests 2") != std::string::npos;
  }, deadline::after(5s)));
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(deadline::after(15s)), 1) << s.proc->output();
  EXPECT_NE(s.proc->output().find("the shutdown deadline cut 1 requests in flight on 1 connections"), std::string::npos)
      << s.proc->output();
  EXPECT_NE(slow.wait(deadline::after(15s)), 0);
}

TEST(graceful_server, sigterm_with_a_slow_upload_exits_1_by_its_deadline_not_the_body_timeout) {
  // The upload would be allowed 60 s (body_read_timeout); the stop's budget is 2 s. The
  // process ends by its deadline (the wait below allows 15 s: well short of 60) and says
  // that it cut the request.
  server_proc s({"--shutdown-timeout", "2s"});
  http_conn up(s.port);
  ASSERT_TRUE(up.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n0123456789"));
  ASSERT_TRUE(eventually([&] {
    return curl({s.url("/metrics")}).output.find("graceful_http_in_flight_requests 2") != std::string::npos;
  }, deadline::after(5s)));
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(deadline::after(15s)), 1) << s.proc->output();
  EXPECT_NE(s.proc->output().find("the shutdown deadline cut 1 requests in flight"), std::string::npos)
      << s.proc->output();
}

TEST(graceful_server, readyz_is_503_during_the_drain_delay_while_requests_are_still_served) {
  // A drain delay far longer than the checks take, however slow the machine; the second
  // SIGTERM then ends it at once (documented: 128 + SIGTERM).
  server_proc s({"--drain-delay", "60s"});
  s.proc->signal(SIGTERM);
  ASSERT_TRUE(s.proc->wait_for_output("draining", deadline::after(5s)));
  EXPECT_TRUE(ends_with(curl({s.url("/readyz")}).output, "503"));
  EXPECT_EQ(curl({s.url("/")}).output, "Hello, World!\n\n200");
  EXPECT_FALSE(s.proc->exited()) << s.proc->output();
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(deadline::after(10s)), 128 + SIGTERM) << s.proc->output();
}

TEST(graceful_server, wrk_keep_alive_load_gets_no_errors) {
  server_proc s;
  auto r = run({program("wrk"), "-t1", "-c16", "-d2s", s.url("/")}, deadline::after(30s));
  ASSERT_EQ(r.status, 0) << r.output;
  // wrk prints these lines only when something failed.
  EXPECT_EQ(r.output.find("Socket errors"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Non-2xx"), std::string::npos) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("(\\d+) requests in"))) << r.output;
  EXPECT_GT(std::stol(m[1]), 0);
  s.proc->signal(SIGTERM);
  EXPECT_EQ(s.proc->wait(deadline::after(10s)), 0);
}
