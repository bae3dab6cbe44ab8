#include <graceful/grpc/shutdown.hpp>

#include <chrono>

#include <grpcpp/server.h>

#include <graceful/grpc/acceptor.hpp>

namespace graceful::grpc {

result<void> shutdown(::grpc::Server& s, graceful::deadline d, acceptor* a) {
  // Accepting first: gRPC 1.51 neither serves nor closes a connection handed to it once its
  // Shutdown has begun (ExternalConnectionAcceptorImpl drops the fd on the floor).
  if (a) a->stop();
  if (d.is_never()) {
    s.Shutdown();
    return ok();
  }
  // gRPC takes wall-clock deadlines; graceful's are monotonic. Convert once, here.
  auto wall = std::chrono::system_clock::now() +
              std::chrono::duration_cast<std::chrono::system_clock::duration>(d.remaining());
  s.Shutdown(wall);
  // Shutdown waits for its completion until `wall`; only when that wait times out does it
  // cancel the remaining calls and wait again. So returning at or after the deadline is
  // exactly "calls were cancelled".
  if (d.expired()) return errc::calls_cancelled;
  return ok();
}

} // namespace graceful::grpc
