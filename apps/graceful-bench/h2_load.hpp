#pragma once
/// \file
/// The HTTP/2 client of the load engine (--h2): prior-knowledge h2c on nghttp2's client
/// session, `-c` connections each carrying `-m` streams at once; every stream is one
/// paced_client of engine.hpp, so pacing, timeouts and accounting are the HTTP/1.1 ones.
///
/// What counts as what, as a careful HTTP/2 client (Go's x/net/http2, grpc) treats it:
///  - a response that ends with END_STREAM: ok / http error by status;
///  - a stream the server did not process — RST_STREAM(REFUSED_STREAM), an id above the
///    last_stream_id of a GOAWAY, or a request that could not be sent because a GOAWAY had
///    arrived — is sent again on a new connection: a retry (counted), not a failure; its
///    latency still counts from the first attempt;
///  - a stream reset with any other code, or cut by the connection's end while the server may
///    have processed it (no GOAWAY, or id <= last_stream_id): a failure.
/// A connection that received GOAWAY takes no new stream; the next request opens a new one
/// (a reconnect with cause "GOAWAY").

#include <memory>
#include <vector>

#include "engine.hpp"

namespace graceful::bench {

/// Adds the `-m` stream clients of connection `conn_index` to `out` (engine.cpp's worker).
void add_h2_clients(worker& w, unsigned conn_index, std::vector<std::unique_ptr<paced_client>>& out);

} // namespace graceful::bench
