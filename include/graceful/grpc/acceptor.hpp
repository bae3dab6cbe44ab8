#pragma once
/// \file
/// Serves a grpc::Server from listening sockets graceful holds (inherited on upgrade,
/// activated by systemd, taken over, or freshly bound by graceful::upgrade).
///
/// gRPC 1.51 cannot adopt a listening socket: AddListeningPort always binds its own. It
/// can, however, take *accepted* connections through an external connection acceptor
/// (ServerBuilder::experimental().AddExternalConnectionAcceptor(FROM_FD, creds)). This
/// class accepts on graceful's listeners on one thread of its own and hands every
/// connection to gRPC, which then runs HTTP/2, TLS (if the credentials say so) and the
/// calls exactly as for its own ports.
///
///   grpc::ServerBuilder b;
///   b.RegisterService(&service);
///   auto acc = graceful::grpc::acceptor::add_to(b);      // instead of AddListeningPort
///   auto server = b.BuildAndStart();
///   acc->serve(up->listen("grpc", "0.0.0.0:50051").value());
///
/// Accepting survives resource exhaustion as graceful::http does: on EMFILE/ENFILE/ENOBUFS/
/// ENOMEM the connection stays queued in the kernel and the loop backs off (5 ms doubling
/// to options::max_backoff) instead of spinning; a client that went away before accept()
/// concerns that client only.
///
/// Note: this header names gRPC's types as ::grpc (inside namespace graceful, plain `grpc`
/// means graceful::grpc).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <graceful/core/deadline.hpp>
#include <graceful/core/result.hpp>
#include <graceful/grpc/errc.hpp>
#include <graceful/upgrade/unique_fd.hpp>

namespace grpc {
class ServerBuilder;
class ServerCredentials;
} // namespace grpc

namespace spdlog { class logger; }

namespace graceful::grpc {

/// Settings of an acceptor, each default beside it.
struct acceptor_options {
  /// Set TCP_NODELAY on each accepted connection. Default true: gRPC's own listener does,
  /// and without it a small unary reply waits for the client's delayed ACK (40 ms on Linux).
  bool no_delay = true;
  /// Longest pause between accept attempts while the process is out of descriptors or
  /// memory. Default 1 s, as Go's net/http: long enough not to spin, short enough that
  /// queued clients are served soon after descriptors free up.
  std::chrono::milliseconds max_backoff{1000};
  /// GRPC_ARG_MAX_CONNECTION_AGE_MS for the server (set on the builder by add_to): gRPC
  /// sends each connection a graceful GOAWAY after this long (+-10% jitter) and the client
  /// reconnects, without failing a call, because the server is not shutting down. After an
  /// upgrade this is how the old process's connections move to the new one: gRPC C++'s own
  /// Server::Shutdown cancels the calls that race its GOAWAY (core kills every call that
  /// arrives once shutdown began), so attach() waits for the connections to age out first,
  /// then shuts down an idle server. Streams in flight are not cut by it (the grace period
  /// stays infinite). Default 10 s: well inside the default 25 s shutdown timeout, and one
  /// reconnect per client every 10 s costs nothing. Zero: leave the builder's setting alone.
  std::chrono::milliseconds max_connection_age{10'000};
  /// Logger for one line per event (rate-limited to one a second while accept fails).
  /// Null (default): spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger{};
};

/// What the acceptor did so far.
struct acceptor_stats {
  std::uint64_t accepted = 0;         ///< connections accepted and handed to gRPC
  std::uint64_t resource_errors = 0;  ///< accept() failures for lack of fds or memory (each followed by a back-off)
  std::uint64_t other_errors = 0;     ///< accept() failures that concern one client (ECONNABORTED, ...)
  std::size_t listeners = 0;          ///< listening sockets being served now
  std::size_t open_connections = 0;   ///< connections handed to gRPC that gRPC has not closed yet
};

/// Accepts on graceful's listening sockets and hands each connection to one grpc::Server.
/// Thread-safe.
class acceptor {
public:
  /// Registers an external connection acceptor with `builder` (call before BuildAndStart)
  /// using `creds` (InsecureServerCredentials() when null; TLS credentials work the same:
  /// gRPC does the handshake on the handed-over connection).
  static std::unique_ptr<acceptor> add_to(::grpc::ServerBuilder& builder,
                                          std::shared_ptr<::grpc::ServerCredentials> creds = nullptr,
                                          acceptor_options o = {});
  /// stop().
  ~acceptor();
  acceptor(const acceptor&) = delete;
  acceptor& operator=(const acceptor&) = delete;

  /// Starts accepting on `listen_fd` (a listening stream socket; owned from now on). Call
  /// after BuildAndStart: gRPC drops connections handed to a server not yet started.
  /// May be called once per listener. Errors: errc::not_a_listener (the fd is closed),
  /// errc::acceptor_stopped, or the OS error starting the thread.
  result<void> serve(upgrade::unique_fd listen_fd);

  /// Stops accepting and closes this process's copies of the listening sockets (a process
  /// that inherited them keeps its own, so its accepts go on). Returns once the accept
  /// thread is gone, so no connection reaches gRPC afterwards: call it before
  /// grpc::Server::Shutdown, which would otherwise leak a connection handed to it during
  /// its shutdown. Idempotent.
  void stop();

  /// Waits until gRPC has closed every connection this acceptor handed it, or `d` passes.
  /// Returns the number still open (0: all closed). Polls every 20 ms: gRPC reports no
  /// connection events, but a closed connection's fd number no longer names its socket.
  std::size_t wait_connections_closed(graceful::deadline d) const;

  /// The options in force.
  const acceptor_options& options() const noexcept;

  /// True once stop() was called.
  bool stopped() const noexcept;
  /// Counters and the number of listeners served.
  acceptor_stats stats() const;
  /// One line for logs and the SIGUSR1 dump: addresses served and the counters.
  std::string describe() const;

private:
  struct impl;
  explicit acceptor(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

} // namespace graceful::grpc
