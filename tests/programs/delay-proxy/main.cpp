// delay-proxy: a TCP proxy on 127.0.0.1 that delays each direction by a fixed one-way time
// (bytes, FIN and RST in order), for a path with latency where the kernel has no netem.
//   delay-proxy --to PORT [--delay 20ms] [--listen-port P] [--port-file FILE]
// Prints "listening on 127.0.0.1:PORT" once it accepts (and writes PORT to FILE); runs until
// SIGTERM or SIGINT. Exit 2 for bad flags, 1 if it cannot listen.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <graceful/core/duration.hpp>

#include "delay_proxy.hpp"

namespace {

int usage(const char* why) {
  std::fprintf(stderr, "delay-proxy: %s\nusage: delay-proxy --to PORT [--delay 20ms] [--listen-port P] [--port-file FILE]\n", why);
  return 2;
}

bool port_arg(const char* text, int& out) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0 || v > 65535) return false;
  out = static_cast<int>(v);
  return true;
}

} // namespace

int main(int argc, char** argv) {
  graceful::test::delay_proxy_options o;
  std::string port_file;
  bool have_to = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf("usage: delay-proxy --to PORT [--delay 20ms] [--listen-port P] [--port-file FILE]\n");
      return 0;
    }
    if (i + 1 >= argc) return usage(("missing value for " + std::string(a)).c_str());
    const char* v = argv[++i];
    if (a == "--to") {
      if (!port_arg(v, o.upstream_port) || o.upstream_port == 0) return usage("--to: not a port");
      have_to = true;
    } else if (a == "--listen-port") {
      if (!port_arg(v, o.listen_port)) return usage("--listen-port: not a port");
    } else if (a == "--delay") {
      const auto d = graceful::parse_duration(v);
      if (!d) return usage("--delay: not a duration (e.g. 20ms)");
      o.delay = std::chrono::duration_cast<std::chrono::microseconds>(*d);
    } else if (a == "--port-file") {
      port_file = v;
    } else {
      return usage(("unknown flag " + std::string(a)).c_str());
    }
  }
  if (!have_to) return usage("--to PORT is required");
  // Block the stop signals before the proxy's threads start, so that they inherit the mask
  // and sigwait below is the only place they are taken.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  graceful::test::delay_proxy proxy(o);
  if (!proxy.ok()) {
    std::fprintf(stderr, "delay-proxy: cannot listen: %s\n", proxy.error().message().c_str());
    return 1;
  }
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%d\n", proxy.port());
      std::fclose(f);
      std::rename(tmp.c_str(), port_file.c_str());
    }
  }
  std::printf("listening on 127.0.0.1:%d (to 127.0.0.1:%d, %lld us each way)\n", proxy.port(), o.upstream_port,
              static_cast<long long>(o.delay.count()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  proxy.stop();
  return 0;
}
