#pragma once
/// \file
/// The listening sockets graceful-run opens once and hands to every worker.
///
/// This is the only file that creates sockets from addresses. When the upgrade layer
/// (include/graceful/upgrade/) offers the same, this file is what to swap for it.

#include <string>
#include <string_view>

#include <graceful/core/result.hpp>

#include "fd.hpp"

namespace graceful::run {

/// One named listening socket.
struct listener {
  std::string name;     ///< the name the worker sees in LISTEN_FDNAMES
  std::string address;  ///< as given on the command line
  std::string bound;    ///< what the kernel bound (port 0 resolved), for logs
  unique_fd fd;         ///< close-on-exec; passed to workers by dup2 only
};

/// True when `name` may appear in LISTEN_FDNAMES: 1-255 characters of [A-Za-z0-9_.-]
/// (sd_listen_fds_with_names splits on ':', so names can never contain one).
bool valid_listener_name(std::string_view name);

/// Opens a listening socket on `address`: "HOST:PORT", "[IPV6]:PORT", ":PORT" (all IPv4
/// interfaces), "unix:/path" or "/path". The descriptor is close-on-exec and numbered at
/// least `min_fd`, so that placing the sockets at fds 3..3+n-1 in a worker with dup2 can
/// never overwrite a socket not yet placed.
graceful::result<listener> open_listener(std::string name, std::string address, int min_fd);

} // namespace graceful::run
