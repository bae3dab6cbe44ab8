#pragma once
// Handler invocation, shared by every protocol: route lookup, 404/405, sync and coroutine
// handlers, a handler's exception turned into a 500.

#include <string_view>

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>

#include <graceful/http/message.hpp>
#include <graceful/http/router.hpp>

namespace graceful::http::detail {

struct server_state;
class stream_sink;

/// How a dispatched request ended.
enum class dispatch_result {
  answered,          ///< `res` holds the response to send (the handler's, a 404/405, or a 500)
  threw_mid_stream,  ///< the handler threw after streaming began: cut the connection/stream
  peer_gone,         ///< before_async_handler() said the peer is gone: nothing to send
};

/// Makes `res` a fresh 200 with no body, the default content type and no extra fields
/// (capacity kept, except above tuning.hpp's shrink_threshold).
void reset_response(response& res);
/// Replaces `res` with `status` and the one-line body `reason`.
void fail_response(response& res, int status, std::string_view reason);

/// Routes `req` and runs its handler with a context whose stream operations go to `sink`.
/// The caller counts the status when it sends the response (loop::count_status).
boost::asio::awaitable<dispatch_result> dispatch(server_state& srv, const request& req, response& res,
                                                 stream_sink& sink);

/// dispatch() in two parts, for a caller that answers most requests without a coroutine
/// frame (each costs an allocation: Asio 1.74 recycles one frame per thread): dispatch_now
/// routes and answers 404/405 and sync handlers (returns null: `res` holds the answer), or
/// returns the coroutine handler, which dispatch_async then runs.
const async_handler* dispatch_now(server_state& srv, const request& req, response& res, stream_sink& sink);
boost::asio::awaitable<dispatch_result> dispatch_async(server_state& srv, const async_handler& h, const request& req,
                                                       response& res, stream_sink& sink);

} // namespace graceful::http::detail
