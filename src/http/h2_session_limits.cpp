// h2_session's shutdown phases and limits: the two GOAWAYs, the refusal of streams above
// the final one, when the connection may close, per-stream and header-block timeouts, and
// the token buckets that cut off floods (rapid reset, PING, SETTINGS) with GOAWAY and a
// warning naming the abuse.
#include "http/h2_session_callbacks.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace graceful::http::detail {

bool h2_session::bucket::take(h2_clock::time_point now) {
  if (at != h2_clock::time_point{}) {
    double secs = std::chrono::duration<double>(now - at).count();
    tokens = std::min(burst, tokens + secs * rate);
  }
  at = now;
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

spdlog::logger& h2_session::log() const noexcept { return log_ ? *log_ : *spdlog::default_logger_raw(); }

void h2_session::begin_shutdown() {
  if (phase_ != phase::open) return;
  phase_ = phase::notice_sent;
  nghttp2_submit_shutdown_notice(ng_);  // its PING follows from on_frame_send
}

void h2_session::final_goaway() {
  if (phase_ == phase::goaway_sent) return;
  phase_ = phase::goaway_sent;
  final_id_ = nghttp2_session_get_last_proc_stream_id(ng_);
  max_seen_id_ = std::max(max_seen_id_, final_id_);
  nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, final_id_, NGHTTP2_NO_ERROR, nullptr, 0);
}

void h2_session::refuse_pending() {
  // nghttp2 has now received these HEADERS (its last received stream id covers them), so the
  // RST_STREAM is sent; counted when it is (on_frame_send).
  for (auto id : refuse_) nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
  refuse_.clear();
}

void h2_session::terminate(std::uint32_t code, std::string_view reason) {
  if (terminated_) return;
  terminated_ = true;
  failed_ = true;
  error_ = std::string(reason);
  phase_ = phase::goaway_sent;
  final_id_ = nghttp2_session_get_last_proc_stream_id(ng_);
  log().warn("http2: {}: {}: GOAWAY {}", s_.peer, reason, nghttp2_http2_strerror(code));
  nghttp2_session_terminate_session(ng_, code);
}

std::size_t h2_session::open_streams() const noexcept {
  std::size_t n = 0;
  for (auto& [id, st] : streams_)
    if (!st->closed) ++n;
  return n;
}

bool h2_session::finished() const noexcept {
  if (want_write()) return false;
  if (failed_) return true;
  if (!streams_.empty()) return false;
  return peer_goaway_ || phase_ == phase::goaway_sent;
}

h2_clock::time_point h2_session::expire(h2_clock::time_point now, std::chrono::milliseconds header,
                                        std::chrono::milliseconds body, std::chrono::milliseconds write) {
  auto next = h2_clock::time_point::max();
  if (in_header_block_ && !terminated_) {
    if (now - header_block_since_ >= header) {
      terminate(NGHTTP2_PROTOCOL_ERROR, "header block without end (no END_HEADERS in time)");
      return next;
    }
    next = std::min(next, header_block_since_ + header);
  }
  std::vector<h2_stream*> overdue;
  bool wedged = false;
  for (auto& [id, p] : streams_) {
    auto& st = *p;
    if (st.closed) continue;
    if (!st.headers_done) {
      // Its HEADERS frame began but its block has not ended: the client stopped mid-frame
      // (found by fuzz/h2_server_fuzz). Nothing else of this connection can arrive until
      // it ends, and the stream can neither be answered nor finish: only closing helps.
      if (now - st.opened >= header) wedged = true;
      else next = std::min(next, st.opened + header);
      continue;
    }
    if (!st.request_complete && !st.dispatched && !st.error_status) {
      if (now - st.progress >= body) overdue.push_back(&st);
      else next = std::min(next, st.progress + body);
    } else if (st.responded && st.buffered() > 0) {
      if (now - st.progress >= write) overdue.push_back(&st);
      else next = std::min(next, st.progress + write);
    }
  }
  if (wedged && !terminated_) {
    terminate(NGHTTP2_PROTOCOL_ERROR, "header block without end (HEADERS frame not finished in time)");
    return h2_clock::time_point::max();
  }
  for (auto* st : overdue) {
    if (!st->request_complete && !st->dispatched) {
      st->error_status = 408;
      make_ready(*st);
    } else {
      // The client stopped granting window: drop the stream, not the connection.
      reset(*st, NGHTTP2_CANCEL);
    }
  }
  return next;
}

} // namespace graceful::http::detail
