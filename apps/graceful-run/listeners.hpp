#pragma once
/// \file
/// The listening sockets graceful-run opens once and hands to every worker. Creation,
/// address parsing and validation of inherited sockets are the upgrade layer's
/// (graceful::upgrade::listeners); this file only adds what socket activation of workers needs.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <graceful/core/listener_name.hpp>
#include <graceful/core/result.hpp>

#include "fd.hpp"

namespace spdlog { class logger; }

namespace graceful::run {

/// One named listening socket.
struct listener {
  std::string name;     ///< the name the worker sees in LISTEN_FDNAMES
  std::string address;  ///< as given on the command line, or "systemd" when inherited unasked
  std::string bound;    ///< what the kernel bound (port 0 resolved), for logs
  bool inherited = false; ///< graceful-run itself got it by socket activation
  unique_fd fd;         ///< close-on-exec; passed to workers by dup2 only
};

/// --listen NAME=ADDR names are checked with graceful::valid_listener_name
/// (graceful/core/listener_name.hpp), the rule every layer uses.
using graceful::valid_listener_name;

/// Opens the --listen sockets, in order. Addresses in the grammar of graceful/core/address.hpp:
/// "HOST:PORT" (numeric), "[IPV6]:PORT", ":PORT" or "*:PORT" (all IPv4 interfaces),
/// "localhost:PORT" (127.0.0.1), "unix:/path" or "/path". When graceful-run itself was started by systemd
/// socket activation, a socket passed under the same name is used (after checking it is
/// bound to that address) instead of a new one; with no --listen at all, every passed socket
/// is handed on under its name. Each descriptor is close-on-exec and numbered at least 3+n,
/// so that placing them at fds 3..3+n-1 in a worker with dup2 never overwrites one not yet
/// placed. On error, `failed` names the --listen that failed.
graceful::result<std::vector<listener>> open_listeners(
    const std::vector<std::pair<std::string, std::string>>& wanted,
    const std::shared_ptr<spdlog::logger>& log, std::string* failed);

} // namespace graceful::run
