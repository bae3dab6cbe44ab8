#pragma once
/// \file
/// The one socket opener: a listening stream socket on an address, as every layer makes it.

#include <string_view>

#include <graceful/core/address.hpp>
#include <graceful/core/result.hpp>
#include <graceful/core/unique_fd.hpp>

namespace graceful {

/// Settings of open_listen_socket(), each default beside it.
struct listen_socket_options {
  /// listen(2) backlog; the kernel caps it at net.core.somaxconn. Default 4096: a burst queued
  /// while a new process starts is kept, which is the point of handing the queue over.
  int backlog = 4096;
};

/// socket + bind + listen on `at`: SOCK_STREAM, close-on-exec, blocking (Asio and epoll
/// users set O_NONBLOCK themselves), SO_REUSEADDR on TCP so a restarted server binds while
/// old connections sit in TIME_WAIT. A UNIX socket file that exists makes bind fail with
/// EADDRINUSE (it is not removed: that is the caller's policy). Errors: the errno of the
/// failing call (std::errc::address_in_use, ...).
result<unique_fd> open_listen_socket(const address& at, const listen_socket_options& o = {});
/// Parses `text` (see address.hpp) and opens it; address errors are graceful::errc values.
result<unique_fd> open_listen_socket(std::string_view text, const listen_socket_options& o = {});

} // namespace graceful
