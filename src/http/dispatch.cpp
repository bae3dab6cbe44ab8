#include "http/dispatch.hpp"

#include <variant>

#include "http/connection_base.hpp"
#include "http/message_access.hpp"
#include "http/server_state.hpp"
#include "http/tuning.hpp"

namespace graceful::http::detail {

void reset_response(response& res) {
  res.status = 200;
  res.body.clear();
  if (res.body.capacity() > shrink_threshold) res.body.shrink_to_fit();
  if (res.content_type != response::default_content_type) res.content_type = response::default_content_type;
  message_access::clear_headers(res);
}

void fail_response(response& res, int status, std::string_view reason) {
  reset_response(res);
  res.status = status;
  res.body.assign(reason);
  res.body += '\n';
}

const async_handler* dispatch_now(server_state& srv, const request& req, response& res, stream_sink& sink) {
  bool path_known = false;
  const handler* h = srv.routes.find(req.method(), req.path(), path_known);
  if (!h) {
    fail_response(res, path_known ? 405 : 404, path_known ? "method not allowed" : "not found");
    if (path_known) res.add_header("Allow", srv.routes.allowed(req.path()));
    return nullptr;
  }
  auto* sh = std::get_if<sync_handler>(h);
  if (!sh) return &std::get<async_handler>(*h);
  auto ctx = message_access::make_context(req, res, sink);
  try {
    (*sh)(ctx);
  } catch (const std::exception& e) {
    srv.log().error("http: handler for {} {} threw: {}", req.method(), req.path(), e.what());
    fail_response(res, 500, "internal server error");
  } catch (...) {
    // `throw 42;` and the like: the same 500, and the connection's bookkeeping still runs.
    srv.log().error("http: handler for {} {} threw a non-std::exception", req.method(), req.path());
    fail_response(res, 500, "internal server error");
  }
  return nullptr;
}

boost::asio::awaitable<dispatch_result> dispatch_async(server_state& srv, const async_handler& h, const request& req,
                                                       response& res, stream_sink& sink) {
  bool ready = co_await sink.before_async_handler();  // not inside the if: GCC 12 bug
  if (!ready) co_return dispatch_result::peer_gone;
  auto ctx = message_access::make_context(req, res, sink);
  bool threw = false;
  try {
    co_await h(ctx);
  } catch (const std::exception& e) {
    srv.log().error("http: handler for {} {} threw: {}", req.method(), req.path(), e.what());
    threw = true;
  } catch (...) {
    srv.log().error("http: handler for {} {} threw a non-std::exception", req.method(), req.path());
    threw = true;
  }
  if (threw) {
    // Mid-stream there is no way to send a 500: the caller cuts the connection (or stream)
    // so the client sees a truncated, not a silently short, response.
    if (sink.streaming()) co_return dispatch_result::threw_mid_stream;
    fail_response(res, 500, "internal server error");
  }
  co_return dispatch_result::answered;
}

boost::asio::awaitable<dispatch_result> dispatch(server_state& srv, const request& req, response& res,
                                                 stream_sink& sink) {
  const async_handler* h = dispatch_now(srv, req, res, sink);
  if (!h) co_return dispatch_result::answered;
  auto r = co_await dispatch_async(srv, *h, req, res, sink);
  co_return r;
}

} // namespace graceful::http::detail
