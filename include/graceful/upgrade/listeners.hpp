#pragma once
/// \file
/// The listening sockets of one process, by name: inherited ones (from a parent's hand-over,
/// systemd socket activation or a takeover) are adopted when asked for, missing ones are
/// created, and inherited ones nobody asked for are closed at commit().

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <graceful/core/errc.hpp>
#include <graceful/core/result.hpp>
#include <graceful/upgrade/unique_fd.hpp>

namespace spdlog { class logger; }

namespace graceful::upgrade {

/// Where a process got a listening socket from.
enum class origin : int {
  created = 0,  ///< bound by this process
  parent = 1,   ///< handed over by the graceful process that started this one
  systemd = 2,  ///< socket activation (LISTEN_FDS)
  takeover = 3, ///< taken from an older process over its takeover UNIX socket
};

/// "created", "parent", "systemd", "takeover".
std::string_view to_string(origin o) noexcept;

/// One fd with its name, as handed between processes. The fd is not owned.
struct named_fd {
  std::string name;  ///< the name the program passes to listen()
  int fd = -1;       ///< the descriptor in this process
};

/// Settings of one listen() call, each default beside it.
struct listen_options {
  /// Backlog for a newly created socket; the kernel caps it at net.core.somaxconn.
  /// Default 4096: large enough that a burst queued while the new process starts is kept,
  /// which is the whole point of handing the queue over instead of re-binding.
  int backlog = 4096;
};

/// An inherited listening socket claimed by listen_inherited(): its name and a duplicate
/// the caller owns.
struct owned_listener {
  std::string name;
  unique_fd fd;
};

/// The named listening sockets of this process. Not thread-safe: use it from one thread
/// during start-up (the upgrader serialises its own use).
class listeners {
public:
  /// Nothing inherited.
  listeners() = default;
  listeners(listeners&&) noexcept = default;
  listeners& operator=(listeners&&) noexcept = default;
  listeners(const listeners&) = delete;
  listeners& operator=(const listeners&) = delete;

  /// Takes ownership of inherited fds. Each must be a socket (fstat S_ISSOCK): a forged
  /// LISTEN_FDS or hand-over variable naming a file, pipe or closed fd gives
  /// errc::invalid_inherited_fd and no fd is taken (they were never ours to close).
  /// Duplicate names give errc::duplicate_name.
  /// Why a set is refused goes to `logger` (null: spdlog's default logger), which the
  /// listeners keep (set_logger).
  static result<listeners> adopt(const std::vector<named_fd>& fds, origin from,
                                 std::shared_ptr<spdlog::logger> logger = {});

  /// A listening socket for `name` at `address`, in the grammar of graceful/core/address.hpp
  /// ("127.0.0.1:8080", "[::1]:0", ":80", "*:80", "localhost:8080" = 127.0.0.1, "unix:/path";
  /// a malformed one is a graceful::errc address_* value). Returns the inherited socket when one has that name,
  /// after checking it is a listening SOCK_STREAM socket of the address's family bound to
  /// that address (port 0 in `address` matches any port; a wildcard address, ":80",
  /// "0.0.0.0:80" or "[::]:80", matches a socket bound to the wildcard of either family, as
  /// systemd's ListenStream=80 makes); otherwise creates one
  /// (SO_REUSEADDR, close-on-exec). The returned fd is a duplicate the caller owns: closing
  /// it stops this process from accepting, while the listeners keep the socket itself open
  /// for the next process. Calling it twice with one name is errc::duplicate_name.
  result<unique_fd> listen(std::string_view name, std::string_view address, const listen_options& lo = {});

  /// Claims every inherited socket no listen() asked for, whatever address it is bound to:
  /// for a program whose addresses are decided by whoever started it (a systemd .socket
  /// unit, graceful-run --listen, or the version that handed them over). Each must be a
  /// listening SOCK_STREAM socket (errc::invalid_inherited_fd otherwise, and nothing is
  /// claimed). In name order; empty when nothing was inherited.
  result<std::vector<owned_listener>> listen_inherited();

  /// Closes the inherited sockets that no listen() asked for, so a listener removed in
  /// the new version stops existing. Returns the names it closed.
  std::vector<std::string> close_unclaimed();

  /// The sockets listen() returned (inherited or created), by name: what a hand-over passes on.
  std::vector<named_fd> active() const;
  /// Where the socket named `name` came from; created when unknown.
  origin origin_of(std::string_view name) const;
  /// Names of the inherited sockets not yet claimed.
  std::vector<std::string> unclaimed() const;
  /// Closes every socket it holds. Processes that received them keep their own copies.
  void close_all() noexcept;
  /// Where errors are explained (which fd, what it is, what was expected). Null (default):
  /// spdlog's default logger.
  void set_logger(std::shared_ptr<spdlog::logger> l) { logger_ = std::move(l); }

private:
  struct entry {
    unique_fd fd;
    origin from = origin::created;
    bool claimed = false;
  };
  std::map<std::string, entry, std::less<>> entries_;
  std::shared_ptr<spdlog::logger> logger_;
};

/// The address a socket is bound to, formatted as listen() reads it ("127.0.0.1:8080",
/// "[::1]:80", "unix:/path"). Empty on error.
std::string local_address(int fd);

} // namespace graceful::upgrade
