// grpc-greeter driven from outside with real clients: gRPC's own C++ client (in this process)
// and grpc-go's (tests/programs/grpc-go-client). Upgrades, drains, deadlines, socket
// activation, graceful-run, descriptor exhaustion, bad flags.
#include <cerrno>
#include <filesystem>
#include <future>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "figure.hpp"
#include "graceful_run.hpp"
#include "grpc_support.hpp"
#include "sockets.hpp"

using namespace graceful::test;
using namespace graceful::test::grpc_it;
using graceful::deadline;

namespace {

/// A server-streaming call: `count` replies `interval_ms` apart.
struct open_stream {
  std::shared_ptr<::grpc::Channel> ch;
  std::unique_ptr<greeter::Greeter::Stub> stub;
  ::grpc::ClientContext ctx;
  std::unique_ptr<::grpc::ClientReader<greeter::HelloReply>> reader;
  open_stream(int port, unsigned count, unsigned interval_ms) : ch(channel(port)), stub(greeter::Greeter::NewStub(ch)) {
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    greeter::HelloStreamRequest req;
    req.set_name("stream");
    req.set_count(count);
    req.set_interval_ms(interval_ms);
    reader = stub->SayHelloStream(&ctx, req);
  }
};

/// A plain TCP connection to 127.0.0.1:port (fd, -1 on failure); sends nothing.
int tcp_connect(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

} // namespace

// The headline: 20 SIGHUP upgrades while 4 connections send unary calls back to back; each
// upgrade waits until the new process has answered a call, so every generation served.
TEST(grpc_greeter, twenty_upgrades_under_load_fail_no_unary_call) {
  greeter_server srv;
  ASSERT_TRUE(srv.start({"--max-connection-age", "500ms", "--shutdown-timeout", "15s"})) << srv.first().output();
  unary_load load(srv.port(), 4);
  ASSERT_TRUE(eventually([&] { return load.ok() > 50; }, deadline::after(15s))) << load.summary();
  std::vector<pid_t> gens{srv.pid()};
  for (int i = 1; i <= 20; ++i) {
    pid_t p = srv.upgrade();
    ASSERT_GT(p, 0) << "upgrade " << i << "\n" << srv.first().output();
    gens.push_back(p);
    ASSERT_TRUE(eventually([&] { return load.served_by(p); }, deadline::after(15s)))
        << "upgrade " << i << ": pid " << p << " never answered; " << load.summary();
  }
  load.stop();
  figure("grpc-greeter, 20 SIGHUP upgrades under 4 unary connections: " + load.summary());
  EXPECT_EQ(load.failed(), 0) << load.summary();
  EXPECT_EQ(load.pids(), 21u) << load.summary();
  // Every old generation drained and exited.
  for (std::size_t i = 0; i + 1 < gens.size(); ++i)
    EXPECT_TRUE(wait_gone(gens[i], deadline::after(15s))) << "generation " << i << " pid " << gens[i];
  ::kill(srv.pid(), SIGTERM);
  EXPECT_TRUE(wait_gone(gens.back(), deadline::after(15s)));
}

// A stream open at an upgrade stays with the old process, which serves it to the end, while
// new calls go to the new process; the old process exits once the stream is done.
TEST(grpc_greeter, a_stream_open_at_an_upgrade_completes_on_the_old_process) {
  greeter_server srv;
  ASSERT_TRUE(srv.start({"--max-connection-age", "500ms"})) << srv.first().output();
  pid_t old = srv.pid();
  open_stream st(srv.port(), 20, 100);
  greeter::HelloReply rep;
  ASSERT_TRUE(st.reader->Read(&rep));
  EXPECT_EQ(rep.pid(), old);
  pid_t fresh = srv.upgrade();
  ASSERT_GT(fresh, 0) << srv.first().output();
  // The old process accepts until its shutdown hook closes its copy of the listener, just
  // after the new one wrote the pid file; from then on new connections reach the new process.
  EXPECT_TRUE(eventually([&] { return hello(channel(srv.port())) == fresh; }, deadline::after(15s)));
  unsigned n = 1;
  while (st.reader->Read(&rep)) {
    EXPECT_EQ(rep.pid(), old);
    EXPECT_EQ(rep.index(), n);
    ++n;
  }
  auto status = st.reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(n, 20u);
  EXPECT_EQ(srv.first().wait(deadline::after(15s)), 0) << srv.first().output();
}

// A stream still open when the shutdown deadline comes is cancelled with a status, and the
// process says so in its exit code.
TEST(grpc_greeter, a_stream_open_at_the_shutdown_deadline_is_cancelled_and_the_exit_code_is_1) {
  greeter_server srv;
  ASSERT_TRUE(srv.start({"--shutdown-timeout", "1s"})) << srv.first().output();
  open_stream st(srv.port(), 100000, 50);
  greeter::HelloReply rep;
  ASSERT_TRUE(st.reader->Read(&rep));
  srv.first().signal(SIGTERM);
  while (st.reader->Read(&rep)) {
  }
  auto status = st.reader->Finish();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(srv.first().wait(deadline::after(15s)), 1) << srv.first().output();
  EXPECT_NE(srv.first().output().find("calls still in flight were cancelled"), std::string::npos)
      << srv.first().output();
}

#ifdef GRACEFUL_HAVE_HEALTH_PROTO
// grpc.health.v1: SERVING on a new process after an upgrade; NOT_SERVING from the moment a
// drain starts, while calls are still served for the drain delay.
TEST(grpc_greeter, health_is_serving_on_the_new_process_and_not_serving_during_the_drain_delay) {
  greeter_server srv;
  ASSERT_TRUE(srv.start({"--drain-delay", "3s", "--max-connection-age", "500ms"})) << srv.first().output();
  EXPECT_EQ(health(channel(srv.port())), "SERVING");
  pid_t fresh = srv.upgrade();
  ASSERT_GT(fresh, 0) << srv.first().output();
  std::shared_ptr<::grpc::Channel> ch;
  // A channel whose connection is with the new process (see the stream test for the race).
  ASSERT_TRUE(eventually([&] { return hello(ch = channel(srv.port())) == fresh; }, deadline::after(15s)));
  EXPECT_EQ(health(ch), "SERVING");
  ASSERT_EQ(::kill(fresh, SIGTERM), 0);
  EXPECT_TRUE(eventually([&] { return health(ch) == "NOT_SERVING"; }, deadline::after(10s))) << srv.first().output();
  EXPECT_EQ(hello(ch), fresh);                 // still served during the drain delay
  EXPECT_EQ(hello(channel(srv.port())), fresh);  // new connections too
  EXPECT_TRUE(wait_gone(fresh, deadline::after(20s)));
  EXPECT_NE(srv.first().output().find("grpc: health NOT_SERVING (draining)"), std::string::npos);
}
#endif

// systemd socket activation (emulated: fd 3, LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES=grpc): the
// greeter serves the socket it was given, upgrades from it, and stops on SIGTERM.
TEST(grpc_greeter, serves_a_systemd_activated_socket_and_upgrades_from_it) {
  auto ls = listen_tcp();
  ASSERT_TRUE(ls.fd);
  greeter_server srv;
  ASSERT_TRUE(srv.start_spec(socket_activated(srv.argv({"--max-connection-age", "500ms"}), ls.fd.get(), "grpc")))
      << srv.first().output();
  EXPECT_EQ(srv.port(), ls.port);
  EXPECT_NE(srv.first().output().find("inherited from systemd"), std::string::npos) << srv.first().output();
  EXPECT_EQ(hello(channel(ls.port)), srv.first().pid());
  pid_t fresh = srv.upgrade();
  ASSERT_GT(fresh, 0) << srv.first().output();
  EXPECT_TRUE(eventually([&] { return hello(channel(ls.port)) == fresh; }, deadline::after(15s)));
  EXPECT_EQ(srv.first().wait(deadline::after(15s)), 0) << srv.first().output();
  ::kill(fresh, SIGTERM);
  EXPECT_TRUE(wait_gone(fresh, deadline::after(15s)));
}

// graceful-run holds the socket and restarts the greeter with it (SIGHUP: new worker, the
// old one gets SIGTERM once the new one said READY=1): no unary call fails.
TEST(grpc_greeter, restarts_under_graceful_run_without_a_failed_call) {
  runner r({"--listen", "grpc=127.0.0.1:0", "--shutdown-timeout", "10s"},
           {bin("grpc-greeter"), "--listen", "127.0.0.1:0", "--max-connection-age", "500ms"});
  int port = r.port("grpc");
  ASSERT_GT(port, 0) << r.output();
  ASSERT_TRUE(r.wait_for(" ready (READY=1)", 15s)) << r.output();
  unary_load load(port, 4);
  ASSERT_TRUE(eventually([&] { return load.ok() > 50; }, deadline::after(15s))) << load.summary();
  for (int i = 1; i <= 3; ++i) {
    r.proc().signal(SIGHUP);
    ASSERT_TRUE(r.wait_count("upgrade complete", i, 15s)) << r.output();
    auto workers = r.ready_workers();
    ASSERT_FALSE(workers.empty());
    pid_t w = workers.back();
    ASSERT_TRUE(eventually([&] { return load.served_by(w); }, deadline::after(15s))) << load.summary();
  }
  load.stop();
  figure("grpc-greeter under graceful-run, 3 SIGHUP restarts, 4 unary connections: " + load.summary());
  EXPECT_EQ(load.failed(), 0) << load.summary();
  r.proc().signal(SIGTERM);
  EXPECT_EQ(r.proc().wait(deadline::after(20s)), 0) << r.output();
}

// grpc-go's client (WaitForReady) across upgrades: no failed call.
TEST(grpc_greeter, grpc_go_client_sees_no_failed_call_across_upgrades) {
  if (!std::filesystem::exists(bin("grpc-go-client"))) GTEST_SKIP() << "grpc-go-client not built (go, protoc-gen-go)";
  greeter_server srv;
  ASSERT_TRUE(srv.start({"--max-connection-age", "500ms"})) << srv.first().output();
  child go({{bin("grpc-go-client"), "-target", "127.0.0.1:" + std::to_string(srv.port()), "-c", "4"}});
  ASSERT_TRUE(go.wait_for_output("pid " + std::to_string(srv.pid()) + "\n", deadline::after(15s))) << go.output();
  for (int i = 1; i <= 5; ++i) {
    pid_t p = srv.upgrade();
    ASSERT_GT(p, 0) << srv.first().output();
    ASSERT_TRUE(go.wait_for_output("pid " + std::to_string(p) + "\n", deadline::after(15s))) << go.output();
  }
  go.signal(SIGTERM);
  auto code = go.wait(deadline::after(20s));
  auto out = go.output();
  auto line = out.substr(out.rfind("calls "));
  figure("grpc-go client, 5 SIGHUP upgrades of grpc-greeter: " + line);
  EXPECT_NE(line.find(" failed 0 "), std::string::npos) << out;
  EXPECT_EQ(code, 0) << out;
}

// Out of descriptors (ulimit -n 64) under a flood of connects: accept backs off instead of
// spinning or dying, and serves again once descriptors are free. Garbage on the port is
// gRPC's to reject; the process keeps serving.
TEST(grpc_greeter, survives_descriptor_exhaustion_a_connect_flood_and_garbage) {
  greeter_server srv;
  auto a = srv.argv();
  std::string cmd = "ulimit -n 64 && exec";
  for (auto& s : a) cmd += " '" + s + "'";
  ASSERT_TRUE(srv.start_spec(child::spec{{"/bin/sh", "-c", cmd}})) << srv.first().output();
  EXPECT_GT(hello(channel(srv.port())), 0);
  std::vector<int> flood;
  for (int i = 0; i < 150; ++i) {
    int s = tcp_connect(srv.port());  // the backlog (4096) takes them all
    if (s >= 0) flood.push_back(s);
  }
  EXPECT_EQ(flood.size(), 150u);
  EXPECT_TRUE(srv.first().wait_for_output("grpc: accept: Too many open files; retrying", deadline::after(15s)))
      << srv.first().output();
  const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\x02 not http/2 at all";
  for (int s : flood) {
    [[maybe_unused]] auto n = ::send(s, garbage, sizeof garbage, MSG_NOSIGNAL);
    ::close(s);
  }
  // Descriptors come back as gRPC closes the flood: a new client is served.
  EXPECT_EQ(hello(channel(srv.port())), srv.first().pid()) << srv.first().output();
  EXPECT_FALSE(srv.first().exited());
  srv.first().signal(SIGTERM);
  EXPECT_EQ(srv.first().wait(deadline::after(15s)), 0) << srv.first().output();
}

TEST(grpc_greeter, bad_flags_exit_2_with_a_message) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"--drain-delay", "soon"},
           {"--shutdown-timeout", "0"},
           {"--upgrade-timeout", "-1s"},
           {"--max-connection-age", "x"},
           {"--log-level", "loud"},
           {"--listen", "not-an-address"},
           {"--no-such-flag"}}) {
    std::vector<std::string> argv{bin("grpc-greeter")};
    argv.insert(argv.end(), args.begin(), args.end());
    child c({argv});
    EXPECT_EQ(c.wait(deadline::after(10s)), 2) << args[0] << ": " << c.output();
    EXPECT_NE(c.output().find("grpc-greeter"), std::string::npos) << c.output();
  }
}
