#pragma once
// Test support: graceful-server as a child process, the way a user or supervisor runs it.
// Always on port 0: the port is the one the server logs ("listening on ADDR (port N)"), so no
// port is ever chosen by bind-close-hand-on.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include <graceful/core/deadline.hpp>

#include "process.hpp"

namespace graceful::test {

/// graceful-server on 127.0.0.1:0, serving once constructed (its port logged).
struct server_proc {
  int port = 0;
  std::unique_ptr<child> proc;
  /// `extra` flags after --listen (with --threads 2 unless `extra` names --threads).
  /// `shell_prefix` runs before it in a shell that then execs it (e.g. "ulimit -n 64").
  explicit server_proc(std::vector<std::string> extra = {}, const std::string& shell_prefix = {});
  pid_t pid() const { return proc->pid(); }
  /// "http://127.0.0.1:PORT" + path.
  std::string url(const std::string& path = "/") const;
};

/// graceful-server copied into a private directory, so that an upgrade (SIGHUP) runs whatever
/// binary is deployed there next, with --pid-file: the live process is the one the pid file
/// names. The test becomes the subreaper of every process it starts (upgraded processes are
/// orphaned to it); the destructor kills and reaps all of them and removes the directory.
class upgradable_server {
public:
  upgradable_server();
  ~upgradable_server();
  upgradable_server(const upgradable_server&) = delete;
  upgradable_server& operator=(const upgradable_server&) = delete;

  /// argv of the deployed binary: --listen `listen` (port 0 matches the inherited socket on
  /// upgrade), --threads 1 unless `extra` names --threads, --pid-file PATH, then `extra`.
  std::vector<std::string> argv(std::vector<std::string> extra = {}, const std::string& listen = "127.0.0.1:0") const;
  /// Starts it (or `spec`, e.g. socket_activated(argv(), ...)) and waits until it has logged
  /// its port and the pid file names it (15 s). False when it did not; first().output() says why.
  bool start(std::vector<std::string> extra = {}, std::vector<std::string> env = {});
  bool start_spec(child::spec spec);
  /// Starts `spec` and waits only for the logged port (for a pid file that cannot be written).
  bool launch(child::spec spec);

  /// SIGHUP to the live process; waits until the pid file names a new process and the old
  /// one is gone (reaped). Returns the new pid, or 0 (with `why` set) when that did not happen.
  pid_t upgrade(std::string* why = nullptr);

  const std::filesystem::path& dir() const noexcept { return dir_; }
  std::string binary() const { return (dir_ / "graceful-server").string(); }
  std::string pid_file() const { return (dir_ / "server.pid").string(); }
  /// The pid in the pid file, 0 when there is none.
  pid_t pid() const;
  int port() const noexcept { return port_; }
  std::string url(const std::string& path = "/") const;
  /// The process the test started (its output holds the log of every generation).
  child& first() { return *first_; }
  bool started() const noexcept { return first_ != nullptr; }
  pid_t first_pid() const noexcept { return first_pid_; }
  /// Forgets the first process (it exited and was waited for): the destructor then only
  /// cleans up its successors.
  void reset_first() { first_.reset(); }

private:
  std::filesystem::path dir_;
  std::unique_ptr<child> first_;
  pid_t first_pid_ = 0;
  int port_ = 0;
};

} // namespace graceful::test
