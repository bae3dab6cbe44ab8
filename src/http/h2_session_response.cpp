// Responses out of h2_session: the HEADERS of a whole or streamed response (fields HTTP/2
// forbids dropped, names lower-cased), its DATA from the stream's buffer under the client's
// flow control, and what a writer may do meanwhile (wait, end, reset, release).
#include "http/h2_session_callbacks.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>
#include <vector>

#include "core/ascii.hpp"
#include "http/response_writer.hpp"  // status_has_body

namespace graceful::http::detail {

namespace {

using graceful::detail::ascii_lower;
using graceful::detail::iequals;

/// Header fields HTTP/2 forbids (RFC 9113 8.2.2) or that the server writes itself.
bool skipped_response_field(std::string_view k) noexcept {
  for (std::string_view f : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
                             "content-length", "te"})
    if (iequals(k, f)) return true;
  return false;
}

nghttp2_nv make_nv(std::string_view n, std::string_view v) {
  return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
          reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE};
}

} // namespace

ssize_t h2_session::callbacks::read_data(nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t len,
                                         std::uint32_t* flags, nghttp2_data_source*, void* u) {
  auto& s = self(u);
  h2_stream* st = s.find(id);
  if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  std::size_t n = std::min(len, st->buffered());
  if (n) {
    std::memcpy(buf, st->out.data() + st->out_off, n);
    st->out_off += n;
    st->progress = h2_clock::now();
    if (st->out_off == st->out.size()) {
      st->out.clear();
      st->out_off = 0;
    }
  }
  if (st->buffered() == 0 && st->body_done) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  } else if (n == 0) {
    return NGHTTP2_ERR_DEFERRED;  // resumed by write() / end()
  }
  if (n && st->dispatched && s.obs_ && st->buffered() < s.s_.stream_buffer_high / 2) s.obs_->on_stream_writable(*st);
  return static_cast<ssize_t>(n);
}

bool h2_session::submit(h2_stream& st, std::string_view date, bool with_provider, std::size_t length) {
  if (st.closed || st.responded) return false;
  auto& res = st.res;
  if (res.status < 100 || res.status > 599) res.status = 500;
  char status[4];
  std::to_chars(status, status + 3, res.status);
  char len[24];
  auto lr = std::to_chars(len, len + sizeof len, length);
  std::vector<std::string> lowered;  // storage for lower-cased names (nghttp2 copies the nv)
  lowered.reserve(res.headers().size());
  std::vector<nghttp2_nv> nv;
  nv.reserve(6 + res.headers().size());
  nv.push_back(make_nv(":status", {status, 3}));
  if (!s_.server_name.empty()) nv.push_back(make_nv("server", s_.server_name));
  if (!date.empty()) nv.push_back(make_nv("date", date));
  bool body = status_has_body(res.status);
  if (body && !res.content_type.empty()) nv.push_back(make_nv("content-type", res.content_type));
  if (body && !with_provider) nv.push_back(make_nv("content-length", {len, static_cast<std::size_t>(lr.ptr - len)}));
  for (auto& [k, v] : res.headers()) {
    if (skipped_response_field(k) || (body && iequals(k, "content-type"))) continue;
    auto& l = lowered.emplace_back(k);
    for (auto& c : l) c = ascii_lower(c);
    nv.push_back(make_nv(l, v));
  }
  nghttp2_data_provider prd{};
  prd.read_callback = &callbacks::read_data;
  bool data = body && !st.head && (with_provider || length > 0);
  st.responded = true;
  int rv = nghttp2_submit_response(ng_, st.id, nv.data(), nv.size(), data ? &prd : nullptr);
  if (rv != 0) {
    st.body_done = true;
    return false;
  }
  return true;
}

bool h2_session::respond(h2_stream& st, std::string_view date) {
  bool body = status_has_body(st.res.status) && !st.head;
  std::size_t length = status_has_body(st.res.status) ? st.res.body.size() : 0;
  if (body) {
    st.out = std::move(st.res.body);
    st.out_off = 0;
  }
  st.body_done = true;
  return submit(st, date, false, length);
}

bool h2_session::start_streaming(h2_stream& st, std::string_view date) {
  st.streaming = true;
  st.body_done = st.head || !status_has_body(st.res.status);
  return submit(st, date, true, 0);
}

bool h2_session::write(h2_stream& st, std::string_view data) {
  if (st.closed || st.body_done) return false;
  if (st.head || data.empty()) return true;
  if (st.buffered() == 0) st.progress = h2_clock::now();  // the write timeout counts from here
  st.out.append(data);
  nghttp2_session_resume_data(ng_, st.id);
  return true;
}

void h2_session::end(h2_stream& st) {
  if (st.body_done) return;
  st.body_done = true;
  if (!st.closed) nghttp2_session_resume_data(ng_, st.id);
}

bool h2_session::write_blocked(const h2_stream& st) const noexcept {
  return !st.closed && st.buffered() >= s_.stream_buffer_high;
}

void h2_session::reset(h2_stream& st, std::uint32_t code) {
  if (st.closed) return;
  st.body_done = true;
  nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, st.id, code);
}

void h2_session::release(h2_stream& st) {
  st.dispatched = false;
  if (st.closed) erase(st.id);
}

} // namespace graceful::http::detail
