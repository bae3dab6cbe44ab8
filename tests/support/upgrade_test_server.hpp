#pragma once
// Runs tests/programs/upgrade-test-server from a private directory, so a test can replace
// the binary at the path it was started from (a deploy) and send SIGHUP (an upgrade).

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "process.hpp"
#include "http_client.hpp"
#include "processes.hpp"

namespace graceful::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline graceful::deadline in(std::chrono::milliseconds d) { return graceful::deadline::after(d); }

class server_test : public ::testing::Test {
protected:
  void SetUp() override {
    become_subreaper();
    char tmpl[] = "/tmp/graceful-upgrade-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    deploy(bin("upgrade-test-server"));
  }
  void TearDown() override {
    servers_.clear();  // SIGKILLs what is still running
    // Whatever the servers started and left behind (upgraded processes) is ours now.
    for (int round = 0; round < 3; ++round)
      for (pid_t p : children_of(::getpid())) kill_and_reap(p);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  /// Installs `program` at dir/server atomically, as a deploy would (rename over the path).
  void deploy(const fs::path& program) {
    auto tmp = dir_ / "server.new";
    fs::copy_file(program, tmp, fs::copy_options::overwrite_existing);
    fs::permissions(tmp, fs::perms::owner_all);
    fs::rename(tmp, server_path());
  }
  /// Installs a shell script at dir/server.
  void deploy_script(const std::string& body) {
    auto tmp = dir_ / "server.new";
    std::ofstream(tmp) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(tmp, fs::perms::owner_all);
    fs::rename(tmp, server_path());
  }
  fs::path server_path() const { return dir_ / "server"; }
  std::string pid_file() const { return (dir_ / "pid").string(); }
  std::string addr_file() const { return (dir_ / "addr").string(); }

  /// Starts dir/server with `--listen http=127.0.0.1:0 --pid-file --addr-file` and `extra`,
  /// waits until it serves, and returns it.
  child& start(std::vector<std::string> extra = {}, std::vector<std::string> env = {}) {
    std::vector<std::string> argv{server_path().string(), "--listen", "http=127.0.0.1:0", "--pid-file", pid_file(),
                                  "--addr-file", addr_file()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    servers_.push_back(std::make_unique<child>(child::spec{argv, env}));
    auto& c = *servers_.back();
    EXPECT_TRUE(c.wait_for_output("ready pid=", in(5000ms))) << c.output();
    return c;
  }
  child& start_raw(std::vector<std::string> argv, std::vector<std::string> env = {}, std::vector<int> keep = {}) {
    servers_.push_back(std::make_unique<child>(child::spec{argv, env, keep}));
    return *servers_.back();
  }
  /// The port the server listens on (from its --addr-file).
  int port() const {
    auto text = read_file(addr_file());
    auto sp = text.find(' ');
    return sp == std::string::npos ? 0 : port_of(text.substr(sp + 1, text.find('\n') - sp - 1));
  }
  /// The pid that serves a fresh connection (0 when refused or reset).
  pid_t served_by(int p) const {
    auto s = fetch(p);
    return s.empty() ? 0 : std::atoi(s.c_str());
  }
  pid_t pid_in_file() const { return std::atoi(read_file(pid_file()).c_str()); }

  fs::path dir_;
  std::vector<std::unique_ptr<child>> servers_;
};

} // namespace graceful::test
