// What nghttp2 reports while h2_session feeds and produces: frames beginning and ending,
// request header fields and body bytes into the stream table, PING ACKs and GOAWAYs of the
// shutdown, floods counted against their buckets, streams closing.
#include "http/h2_session_callbacks.hpp"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "http/message_access.hpp"

namespace graceful::http::detail {

int h2_session::callbacks::on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* u) {
  auto& s = self(u);
  s.activity_ = h2_clock::now();
  if (hd->type == NGHTTP2_HEADERS) {
    s.in_header_block_ = !has_flag(hd->flags, NGHTTP2_FLAG_END_HEADERS);
    if (s.in_header_block_) s.header_block_since_ = s.activity_;
    // A new client stream after the final GOAWAY: nghttp2 ignores its header block (or, while
    // the GOAWAY is still queued, opens a stream nobody will answer). Refuse it explicitly
    // with REFUSED_STREAM, which tells the client it may safely retry; feed() submits it
    // once nghttp2 has processed this frame, since a RST for an id not yet received is
    // dropped (nghttp2_session_add_rst_stream: idle stream).
    if (s.phase_ == phase::goaway_sent && (hd->stream_id & 1) && hd->stream_id > s.final_id_ &&
        hd->stream_id > s.max_seen_id_) {
      s.max_seen_id_ = hd->stream_id;
      s.refuse_.push_back(hd->stream_id);
    }
  } else if (hd->type == NGHTTP2_CONTINUATION && has_flag(hd->flags, NGHTTP2_FLAG_END_HEADERS)) {
    s.in_header_block_ = false;
  }
  return 0;
}

int h2_session::callbacks::on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto& s = self(u);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  s.max_seen_id_ = std::max(s.max_seen_id_, f->hd.stream_id);
  // Above the final GOAWAY's id (submitted, not yet sent): refused, see on_begin_frame.
  if (s.phase_ == phase::goaway_sent && f->hd.stream_id > s.final_id_) return 0;
  s.open_stream(f->hd.stream_id);
  return 0;
}

int h2_session::callbacks::on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name,
                                     std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                                     std::uint8_t, void* u) {
  auto& s = self(u);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers dropped
  h2_stream* st = s.find(f->hd.stream_id);
  if (!st || st->error_status) return 0;
  st->header_bytes += namelen + valuelen + 32;
  if (st->header_bytes > s.s_.max_header_list_size) {
    st->error_status = 431;  // keep nothing more; answered once the block ends
    return 0;
  }
  auto& a = message_access::arena(st->req);
  st->offs.push_back(static_cast<std::uint32_t>(a.size()));
  a.append(reinterpret_cast<const char*>(name), namelen);
  st->offs.push_back(static_cast<std::uint32_t>(a.size()));
  a.append(reinterpret_cast<const char*>(value), valuelen);
  st->offs.push_back(static_cast<std::uint32_t>(a.size()));
  return 0;
}

int h2_session::callbacks::on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                                         std::size_t len, void* u) {
  auto& s = self(u);
  h2_stream* st = s.find(id);
  if (!st || st->error_status || st->request_complete) return 0;  // discarded (window still returned)
  st->progress = h2_clock::now();
  auto& body = message_access::body(st->req);
  if (body.size() + len > s.s_.max_body_bytes) {
    st->error_status = 413;
    body.clear();
    s.make_ready(*st);
    return 0;
  }
  body.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int h2_session::callbacks::on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto& s = self(u);
  auto now = h2_clock::now();
  switch (f->hd.type) {
    case NGHTTP2_HEADERS: {
      if (has_flag(f->hd.flags, NGHTTP2_FLAG_END_HEADERS)) s.in_header_block_ = false;
      h2_stream* st = s.find(f->hd.stream_id);
      if (!st) break;
      if (f->headers.cat == NGHTTP2_HCAT_REQUEST) s.finish_headers(*st);
      if (has_flag(f->hd.flags, NGHTTP2_FLAG_END_STREAM)) {
        st->request_complete = true;
        s.make_ready(*st);
      }
      break;
    }
    case NGHTTP2_DATA: {
      h2_stream* st = s.find(f->hd.stream_id);
      if (st && has_flag(f->hd.flags, NGHTTP2_FLAG_END_STREAM)) {
        st->request_complete = true;
        s.make_ready(*st);
      }
      break;
    }
    case NGHTTP2_RST_STREAM:
      ++s.counters_.streams_reset;
      if (!s.resets_.take(now)) s.terminate(NGHTTP2_ENHANCE_YOUR_CALM, "rapid reset (RST_STREAM flood, CVE-2023-44487)");
      break;
    case NGHTTP2_PING:
      if (has_flag(f->hd.flags, NGHTTP2_FLAG_ACK)) {
        const char* d = reinterpret_cast<const char*>(f->ping.opaque_data);
        if (std::memcmp(d, shutdown_ping_payload, 8) == 0 && !s.ping1_acked_) {
          s.ping1_acked_ = true;
          s.final_goaway();
        }
      } else if (!s.pings_.take(now)) {
        s.terminate(NGHTTP2_ENHANCE_YOUR_CALM, "PING flood");
      }
      break;
    case NGHTTP2_SETTINGS:
      if (!has_flag(f->hd.flags, NGHTTP2_FLAG_ACK) && !s.settings_frames_.take(now))
        s.terminate(NGHTTP2_ENHANCE_YOUR_CALM, "SETTINGS flood");
      break;
    case NGHTTP2_GOAWAY:
      s.peer_goaway_ = true;
      break;
    default:
      break;
  }
  return 0;
}

int h2_session::callbacks::on_frame_send(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto& s = self(u);
  if (f->hd.type == NGHTTP2_GOAWAY) {
    ++s.counters_.goaways_sent;
    // The shutdown PING goes out right after the notice, so that its ACK proves the client
    // has read the notice (frames are processed in order).
    if (f->goaway.error_code == NGHTTP2_NO_ERROR && !s.terminated_ && f->goaway.last_stream_id == 0x7fffffff &&
        !s.ping1_sent_) {
      s.ping1_sent_ = true;
      nghttp2_submit_ping(s.ng_, NGHTTP2_FLAG_NONE, reinterpret_cast<const std::uint8_t*>(shutdown_ping_payload));
    }
    if (f->goaway.error_code != NGHTTP2_NO_ERROR && !s.terminated_) {
      // nghttp2 itself tore the connection down (its own flood or protocol checks).
      s.terminated_ = true;
      s.failed_ = true;  // no frame is processed after it: the connection may close
      if (s.error_.empty()) s.error_ = nghttp2_http2_strerror(f->goaway.error_code);
      s.log().warn("http2: {}: GOAWAY {} sent by the protocol library", s.s_.peer,
                   nghttp2_http2_strerror(f->goaway.error_code));
    }
  } else if (f->hd.type == NGHTTP2_RST_STREAM) {
    // Counted here, on the wire: ours after the final GOAWAY, and nghttp2's own refusals.
    if (f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM) ++s.counters_.streams_refused;
  } else if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
             has_flag(f->hd.flags, NGHTTP2_FLAG_END_STREAM)) {
    // Answered before the request ended (413, 408): tell the client to stop sending
    // (RFC 9113 8.1), only now that the response is out, so the RST cannot overtake it.
    h2_stream* st = s.find(f->hd.stream_id);
    if (st && !st->request_complete && !st->closed)
      nghttp2_submit_rst_stream(s.ng_, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

int h2_session::callbacks::on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
  auto& s = self(u);
  h2_stream* st = s.find(id);
  if (!st) return 0;
  st->closed = true;
  st->close_code = code;
  if (st->dispatched) {
    if (s.obs_) s.obs_->on_stream_writable(*st);
  } else {
    s.erase(id);
  }
  return 0;
}

} // namespace graceful::http::detail
