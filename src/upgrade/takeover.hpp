#pragma once
// Socket takeover over a UNIX socket (HAProxy's -x, Proxygen's socket takeover): the wire
// format is documented in takeover.cpp above the code. Internal.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>

#include <graceful/core/deadline.hpp>
#include <graceful/core/result.hpp>
#include <graceful/upgrade/listeners.hpp>
#include <graceful/upgrade/unique_fd.hpp>

namespace spdlog { class logger; }

namespace graceful::upgrade::detail {

inline constexpr int takeover_version = 1;

/// What the old process's server asks of the upgrader.
struct takeover_hooks {
  /// Enter the upgrading state and return the sockets to send, or the refusal.
  std::function<result<std::vector<named_fd>>()> begin;
  /// The conversation is over: the new pid on success, else why it failed.
  std::function<void(result<pid_t>)> end;
  /// How long the new process may take to say ready.
  std::chrono::milliseconds timeout{60000};
  /// Readable once the upgrader stops: abandon the conversation.
  int cancel_fd = -1;
  std::shared_ptr<spdlog::logger> logger;
};

/// The old process's side: a SOCK_SEQPACKET socket at `path`, mode 0600, served by one thread.
class takeover_server {
public:
  static result<std::unique_ptr<takeover_server>> start(const std::filesystem::path& path, takeover_hooks hooks);
  ~takeover_server();
  takeover_server(const takeover_server&) = delete;
  takeover_server& operator=(const takeover_server&) = delete;

private:
  takeover_server() = default;
  void run();
  void converse(int conn);
  std::filesystem::path path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  unique_fd listen_fd_;
  unique_fd stop_fd_;
  takeover_hooks hooks_;
  std::thread thread_;
};

/// The new process's side, after receiving the sockets.
struct takeover_client {
  unique_fd conn;              ///< kept open until ready() reports on it
  pid_t old_pid = 0;           ///< the process that handed over (SO_PEERCRED)
  std::vector<named_fd> fds;   ///< received sockets (owned by the caller now)
};

/// Connects to the old process at `path`, checks the socket file (a socket owned by our
/// uid, not group/world writable, not a symlink) and the peer (same uid), and receives the
/// listening sockets. Why it refuses goes to `log`.
result<takeover_client> take_over(const std::filesystem::path& path, graceful::deadline d, spdlog::logger& log);

/// Tells the old process this one serves: it starts draining.
result<void> send_takeover_ready(int conn);

} // namespace graceful::upgrade::detail
