// grpc-greeter-client: gRPC's own C++ client against a Greeter server (grpc-greeter, or any
// server of examples/grpc-greeter/greeter.proto: bench/grpc.sh also points it at Go).
//
//   grpc-greeter-client hello  --target 127.0.0.1:50051 [--name N]
//   grpc-greeter-client stream --target ... --count 10 --interval 100ms
//   grpc-greeter-client health --target ... [--service S]      # exit 0 only when SERVING
//   grpc-greeter-client load   --target ... -c 8 -d 10s [--at 3s --exec 'kill -HUP ...'] [--json F]
//
// `load` runs unary SayHello calls in a closed loop on -c channels (one TCP connection each),
// every call with wait_for_ready, so a restart that refuses connections for a moment shows
// as latency, and one that breaks calls shows as failures. It prints the failures by status
// code and latency percentiles; exit 0 when no call failed, 1 otherwise, 2 for bad usage.
// With -d 0 it runs until SIGINT/SIGTERM. Every call is counted exactly once.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <graceful/core/duration.hpp>

#include "greeter.grpc.pb.h"
#ifdef GRACEFUL_HAVE_HEALTH_PROTO
#include "health.grpc.pb.h"
#endif

namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::shared_ptr<::grpc::Channel> channel(const std::string& target) {
  ::grpc::ChannelArguments args;
  // One connection per channel: without this, channels to one target share a subchannel.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return ::grpc::CreateCustomChannel(target, ::grpc::InsecureChannelCredentials(), args);
}

std::string code_name(::grpc::StatusCode c) {
  static const char* names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
                                "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  auto i = static_cast<int>(c);
  return i >= 0 && i < 17 ? names[i] : std::to_string(i);
}

void set_deadline(::grpc::ClientContext& ctx, milliseconds timeout) {
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
}

int hello(const std::string& target, const std::string& name, milliseconds timeout) {
  auto stub = greeter::Greeter::NewStub(channel(target));
  ::grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  set_deadline(ctx, timeout);
  greeter::HelloRequest req;
  req.set_name(name);
  greeter::HelloReply rep;
  auto s = stub->SayHello(&ctx, req, &rep);
  if (!s.ok()) {
    std::printf("status %s: %s\n", code_name(s.error_code()).c_str(), s.error_message().c_str());
    return 1;
  }
  std::printf("%s (pid %d)\n", rep.message().c_str(), rep.pid());
  return 0;
}

int stream(const std::string& target, const std::string& name, unsigned count, milliseconds interval,
           milliseconds timeout) {
  auto stub = greeter::Greeter::NewStub(channel(target));
  ::grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  set_deadline(ctx, timeout);
  greeter::HelloStreamRequest req;
  req.set_name(name);
  req.set_count(count);
  req.set_interval_ms(static_cast<std::uint32_t>(interval.count()));
  auto r = stub->SayHelloStream(&ctx, req);
  greeter::HelloReply rep;
  while (r->Read(&rep)) {
    std::printf("%u %s (pid %d)\n", rep.index(), rep.message().c_str(), rep.pid());
    std::fflush(stdout);
  }
  auto s = r->Finish();
  std::printf("status %s%s%s\n", code_name(s.error_code()).c_str(), s.ok() ? "" : ": ", s.error_message().c_str());
  return s.ok() ? 0 : 1;
}

#ifdef GRACEFUL_HAVE_HEALTH_PROTO
int health(const std::string& target, const std::string& service, milliseconds timeout) {
  auto stub = grpc::health::v1::Health::NewStub(channel(target));
  ::grpc::ClientContext ctx;
  set_deadline(ctx, timeout);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse rep;
  auto s = stub->Check(&ctx, req, &rep);
  if (!s.ok()) {
    std::printf("status %s: %s\n", code_name(s.error_code()).c_str(), s.error_message().c_str());
    return 1;
  }
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(rep.status()).c_str());
  return rep.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}
#else
int health(const std::string&, const std::string&, milliseconds) {
  std::fprintf(stderr, "grpc-greeter-client: built without grpc/health/v1/health.proto (golang-google-grpc-dev)\n");
  return 2;
}
#endif

struct load_options {
  std::string target, name = "load", exec, json;
  unsigned connections = 8;
  milliseconds duration{10'000}, at{-1}, timeout{10'000};
};

struct worker_result {
  std::vector<std::uint32_t> latency_us;  // successful calls
  std::map<std::string, std::uint64_t> failures;
  std::set<int> pids;
  std::uint64_t calls = 0;
};

double percentile(const std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)] / 1000.0;
}

int load(const load_options& o) {
  // SIGINT/SIGTERM end the run (then in-flight calls finish): blocked in every thread,
  // waited for below.
  sigset_t stop_set;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_set, nullptr);

  std::atomic<bool> stop{false};
  std::vector<worker_result> results(o.connections);
  std::vector<std::thread> workers;
  const auto t0 = clock_type::now();
  for (unsigned i = 0; i < o.connections; ++i) {
    workers.emplace_back([&, i] {
      auto stub = greeter::Greeter::NewStub(channel(o.target));
      auto& r = results[i];
      greeter::HelloRequest req;
      req.set_name(o.name);
      while (!stop.load(std::memory_order_relaxed)) {
        ::grpc::ClientContext ctx;
        ctx.set_wait_for_ready(true);
        set_deadline(ctx, o.timeout);
        greeter::HelloReply rep;
        auto s0 = clock_type::now();
        auto s = stub->SayHello(&ctx, req, &rep);
        ++r.calls;
        if (s.ok()) {
          r.latency_us.push_back(static_cast<std::uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - s0).count()));
          r.pids.insert(rep.pid());
        } else {
          ++r.failures[code_name(s.error_code())];
        }
      }
    });
  }

  struct action_result {
    double started_s = 0, ended_s = 0;
    int exit_code = -1;
  };
  std::optional<action_result> action;
  std::thread action_thread;
  std::atomic<bool> action_done{false};
  auto wait_signal = [&](milliseconds d) {  // true when a stop signal came within d
    auto until = clock_type::now() + d;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - clock_type::now());
      if (left.count() <= 0) return false;
      timespec ts{static_cast<time_t>(left.count() / 1'000'000'000), static_cast<long>(left.count() % 1'000'000'000)};
      if (sigtimedwait(&stop_set, nullptr, &ts) > 0) return true;
      if (errno == EAGAIN) return false;  // else EINTR (another signal, e.g. SIGCHLD): wait on
    }
  };
  bool interrupted = false;
  if (!o.exec.empty() && o.at.count() >= 0) {
    interrupted = wait_signal(o.at);
    if (!interrupted) {
      action.emplace();
      action_thread = std::thread([&] {
        action->started_s = std::chrono::duration<double>(clock_type::now() - t0).count();
        int st = std::system(o.exec.c_str());
        action->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        action->ended_s = std::chrono::duration<double>(clock_type::now() - t0).count();
        action_done = true;
      });
    }
  }
  if (!interrupted) {
    if (o.duration.count() == 0) {
      while (!wait_signal(milliseconds(1000))) {
      }
    } else {
      auto left = o.duration - std::chrono::duration_cast<milliseconds>(clock_type::now() - t0);
      if (left.count() > 0) wait_signal(left);
    }
  }
  stop = true;
  for (auto& w : workers) w.join();
  if (action_thread.joinable()) action_thread.join();
  double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();

  std::vector<std::uint32_t> lat;
  std::map<std::string, std::uint64_t> failures;
  std::set<int> pids;
  std::uint64_t calls = 0, failed = 0;
  for (auto& r : results) {
    lat.insert(lat.end(), r.latency_us.begin(), r.latency_us.end());
    for (auto& [k, v] : r.failures) {
      failures[k] += v;
      failed += v;
    }
    pids.insert(r.pids.begin(), r.pids.end());
    calls += r.calls;
  }
  std::sort(lat.begin(), lat.end());
  std::string fail_json, fail_text, pid_json;
  for (auto& [k, v] : failures) {
    fail_json += fmt::format("{}\"{}\": {}", fail_json.empty() ? "" : ", ", k, v);
    fail_text += fmt::format(" {}={}", k, v);
  }
  for (int p : pids) pid_json += fmt::format("{}{}", pid_json.empty() ? "" : ", ", p);
  auto p50 = percentile(lat, 50), p90 = percentile(lat, 90), p99 = percentile(lat, 99),
       p999 = percentile(lat, 99.9), mx = lat.empty() ? 0.0 : lat.back() / 1000.0;
  std::fprintf(stderr,
               "calls %llu  ok %llu  failed %llu%s\nlatency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n"
               "rps %.0f over %.2f s on %u connections; server pids seen: %s\n",
               static_cast<unsigned long long>(calls), static_cast<unsigned long long>(calls - failed),
               static_cast<unsigned long long>(failed), fail_text.c_str(), p50, p90, p99, p999, mx,
               static_cast<double>(calls) / elapsed, elapsed, o.connections, pid_json.c_str());
  if (action)
    std::fprintf(stderr, "action '%s' ran %.2f-%.2f s, exit %d\n", o.exec.c_str(), action->started_s,
                 action->ended_s, action->exit_code);
  if (!o.json.empty()) {
    auto act = action ? fmt::format("{{\"command\": \"{}\", \"started_s\": {:.3f}, \"ended_s\": {:.3f}, \"exit_code\": {}}}",
                                    o.exec, action->started_s, action->ended_s, action->exit_code)
                      : std::string("null");
    auto text = fmt::format(
        "{{\"tool\": \"grpc-greeter-client load\", \"target\": \"{}\", \"connections\": {}, \"elapsed_s\": {:.3f}, "
        "\"calls\": {}, \"ok\": {}, \"failed\": {}, \"failures\": {{{}}}, "
        "\"latency_ms\": {{\"p50\": {:.3f}, \"p90\": {:.3f}, \"p99\": {:.3f}, \"p99_9\": {:.3f}, \"max\": {:.3f}}}, "
        "\"pids\": [{}], \"interrupted\": {}, \"action\": {}}}\n",
        o.target, o.connections, elapsed, calls, calls - failed, failed, fail_json, p50, p90, p99, p999, mx, pid_json,
        interrupted ? "true" : "false", act);
    if (o.json == "-") {
      std::fputs(text.c_str(), stdout);
    } else {
      std::ofstream(o.json) << text;
    }
  }
  return failed == 0 ? 0 : 1;
}

bool to_ms(const std::string& text, milliseconds& out) {
  auto d = graceful::parse_duration(text);
  if (!d || d->count() < 0) return false;
  out = std::chrono::ceil<milliseconds>(*d);
  return true;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"grpc-greeter-client: gRPC C++ client for the Greeter service"};
  app.require_subcommand(1);
  std::string target = "127.0.0.1:50051", name = "world", timeout = "10s", interval = "100ms", duration = "10s",
              at, service;
  unsigned count = 10;
  load_options lo;
  auto common = [&](CLI::App* c) {
    c->add_option("--target", target, "server address (default 127.0.0.1:50051)");
    c->add_option("--timeout", timeout, "deadline of each call (default 10s)");
  };
  auto* h = app.add_subcommand("hello", "one SayHello call");
  common(h);
  h->add_option("--name", name, "name to greet (default world)");
  auto* s = app.add_subcommand("stream", "one SayHelloStream call; prints each reply");
  common(s);
  s->add_option("--name", name, "name to greet (default world)");
  s->add_option("--count", count, "replies (default 10)");
  s->add_option("--interval", interval, "time between replies (default 100ms)");
  auto* hc = app.add_subcommand("health", "grpc.health.v1.Health/Check; exit 0 only when SERVING");
  common(hc);
  hc->add_option("--service", service, "service name (default \"\": the whole server)");
  auto* l = app.add_subcommand("load", "closed-loop SayHello calls; exit 1 if any failed");
  common(l);
  l->add_option("-c,--connections", lo.connections, "channels, one connection each (default 8)");
  l->add_option("-d,--duration", duration, "how long to send calls; 0 = until SIGINT/SIGTERM (default 10s)");
  l->add_option("--at", at, "when to run --exec, from the start");
  l->add_option("--exec", lo.exec, "/bin/sh -c command to run at --at (e.g. the restart)");
  l->add_option("--json", lo.json, "write the results as JSON here ('-' = stdout)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "grpc-greeter-client: %s\n", e.what());
    return 2;
  }
  auto bad = [](const std::string& m) {
    std::fprintf(stderr, "grpc-greeter-client: %s\n", m.c_str());
    return 2;
  };
  milliseconds to{}, iv{}, du{}, at_ms{-1};
  if (!to_ms(timeout, to) || to.count() == 0) return bad("--timeout: not a positive duration: " + timeout);
  if (!to_ms(interval, iv)) return bad("--interval: not a duration: " + interval);
  if (!to_ms(duration, du)) return bad("--duration: not a duration: " + duration);
  if (!at.empty() && !to_ms(at, at_ms)) return bad("--at: not a duration: " + at);
  if (h->parsed()) return hello(target, name, to);
  if (s->parsed()) return stream(target, name, count, iv, to);
  if (hc->parsed()) return health(target, service, to);
  if (lo.connections == 0 || lo.connections > 1000) return bad("--connections: 1 to 1000");
  if (lo.exec.empty() != at.empty()) return bad("--at and --exec go together");
  lo.target = target;
  lo.timeout = to;
  lo.duration = du;
  lo.at = at_ms;
  return load(lo);
}
