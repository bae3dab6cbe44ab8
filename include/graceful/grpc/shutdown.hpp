#pragma once
/// \file
/// The stop verb for a grpc::Server served by an acceptor: stop accepting, then let gRPC
/// drain, bounded by a deadline.

#include <graceful/core/deadline.hpp>
#include <graceful/core/result.hpp>
#include <graceful/grpc/errc.hpp>

namespace grpc { class Server; }

namespace graceful::grpc {

class acceptor;

/// Stops `a` (if not null: no new connection reaches gRPC, the listener copies are closed),
/// then grpc::Server::Shutdown(d): gRPC core sends GOAWAY to every connection, waits for a
/// PING round trip, sends the final GOAWAY, refuses new calls and lets calls in flight
/// (streams included) run to completion. If `d` passes first, gRPC cancels the calls still
/// running (their clients get a status, CANCELLED or UNAVAILABLE) and waits for the
/// handlers to return. Returns ok() when every call completed before `d`, and
/// errc::calls_cancelled when the deadline cut some: gRPC reports nothing itself, but its
/// Shutdown only lasts until `d` when it had to cancel, so the result is "returned at or
/// after `d`". A never-expiring `d` waits for every call.
result<void> shutdown(::grpc::Server& s, graceful::deadline d, acceptor* a = nullptr);

} // namespace graceful::grpc
