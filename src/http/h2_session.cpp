#include "h2_session.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include "core/ascii.hpp"
#include "http/response_writer.hpp"  // status_has_body

namespace graceful::http::detail {

namespace {

// PING payloads of the two shutdown phases; a client's own PINGs never match them.
constexpr char ping1_payload[9] = "gfshut-1";
constexpr char ping2_payload[9] = "gfshut-2";

bool has_flag(std::uint8_t flags, std::uint8_t f) noexcept { return (flags & f) != 0; }

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

// ---- nghttp2 callbacks ----

struct h2_session::callbacks {
  static h2_session& self(void* u) { return *static_cast<h2_session*>(u); }

  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* u) {
    auto& s = self(u);
    s.activity_ = h2_clock::now();
    if (hd->type == NGHTTP2_HEADERS) {
      s.in_header_block_ = !has_flag(hd->flags, NGHTTP2_FLAG_END_HEADERS);
      if (s.in_header_block_) s.header_block_since_ = s.activity_;
      // A new client stream after the final GOAWAY: nghttp2 ignores its header block; say
      // so explicitly with REFUSED_STREAM, which tells the client it may safely retry.
      if (s.phase_ == phase::goaway_sent && (hd->stream_id & 1) && hd->stream_id > s.final_id_ &&
          hd->stream_id > s.max_seen_id_) {
        s.max_seen_id_ = hd->stream_id;
        if (nghttp2_submit_rst_stream(s.ng_, NGHTTP2_FLAG_NONE, hd->stream_id, NGHTTP2_REFUSED_STREAM) == 0)
          ++s.counters_.streams_refused;
      }
    } else if (hd->type == NGHTTP2_CONTINUATION && has_flag(hd->flags, NGHTTP2_FLAG_END_HEADERS)) {
      s.in_header_block_ = false;
    }
    return 0;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u) {
    auto& s = self(u);
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    s.max_seen_id_ = std::max(s.max_seen_id_, f->hd.stream_id);
    // Above the final GOAWAY's id (submitted, maybe not yet sent): refused in on_begin_frame.
    if (s.phase_ == phase::goaway_sent && f->hd.stream_id > s.final_id_) return 0;
    s.open_stream(f->hd.stream_id);
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* u) {
    auto& s = self(u);
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers dropped
    h2_stream* st = s.find(f->hd.stream_id);
    if (!st || st->error_status) return 0;
    st->header_bytes += namelen + valuelen + 32;
    if (st->header_bytes > s.s_.max_header_list_size) {
      st->error_status = 431;  // keep nothing more; answered once the block ends
      return 0;
    }
    auto& a = st->req.arena_;
    st->offs.push_back(static_cast<std::uint32_t>(a.size()));
    a.append(reinterpret_cast<const char*>(name), namelen);
    st->offs.push_back(static_cast<std::uint32_t>(a.size()));
    a.append(reinterpret_cast<const char*>(value), valuelen);
    st->offs.push_back(static_cast<std::uint32_t>(a.size()));
    return 0;
  }

  static int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
                           void* u) {
    auto& s = self(u);
    h2_stream* st = s.find(id);
    if (!st || st->error_status || st->request_complete) return 0;  // discarded (window still returned)
    st->progress = h2_clock::now();
    if (st->req.body_.size() + len > s.s_.max_body_bytes) {
      st->error_status = 413;
      st->req.body_.clear();
      s.make_ready(*st);
      return 0;
    }
    st->req.body_.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u) {
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
          if (std::memcmp(d, ping1_payload, 8) == 0 && !s.ping1_acked_) {
            s.ping1_acked_ = true;
            s.final_goaway();
          } else if (std::memcmp(d, ping2_payload, 8) == 0) {
            s.ping2_acked_ = true;
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

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* f, void* u) {
    auto& s = self(u);
    if (f->hd.type == NGHTTP2_GOAWAY) {
      ++s.counters_.goaways_sent;
      // Each shutdown PING goes out after its GOAWAY, so that its ACK proves the client
      // has read the GOAWAY (frames are processed in order).
      if (f->goaway.error_code == NGHTTP2_NO_ERROR && !s.terminated_) {
        if (s.phase_ == phase::goaway_sent && f->goaway.last_stream_id == s.final_id_ && !s.ping2_sent_) {
          s.ping2_sent_ = true;
          s.send_ping(ping2_payload);
        } else if (f->goaway.last_stream_id == 0x7fffffff && !s.ping1_sent_) {
          s.ping1_sent_ = true;
          s.send_ping(ping1_payload);
        }
      }
      if (f->goaway.error_code != NGHTTP2_NO_ERROR && !s.terminated_) {
        // nghttp2 itself tore the connection down (its own flood or protocol checks).
        s.terminated_ = true;
        s.failed_ = true;  // no frame is processed after it: the connection may close
        if (s.error_.empty()) s.error_ = nghttp2_http2_strerror(f->goaway.error_code);
        s.log().warn("http2: {}: GOAWAY {} sent by the protocol library", s.s_.peer,
                     nghttp2_http2_strerror(f->goaway.error_code));
      }
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

  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
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

  static ssize_t read_data(nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t len, std::uint32_t* flags,
                           nghttp2_data_source*, void* u) {
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
};

// ---- construction ----

h2_session::h2_session(h2_settings s, observer* obs) : s_(std::move(s)), obs_(obs) {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &callbacks::on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, &callbacks::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &callbacks::on_stream_close);

  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    throw std::bad_alloc();
  }
  // Closed streams are not kept for the priority tree: memory stays bounded by open streams.
  nghttp2_option_set_no_closed_streams(opt, 1);
  // The library's own rapid-reset limiter stays as a backstop above ours (which logs why).
  nghttp2_option_set_stream_reset_rate_limit(opt, 2ull * s_.reset_burst, 2ull * s_.reset_rate);
  // A client that never reads our PING/SETTINGS ACKs is cut off (NGHTTP2_ERR_FLOODED).
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_continuations(opt, 8);
  int rv = nghttp2_session_server_new2(&ng_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) throw std::bad_alloc();

  auto now = h2_clock::now();
  resets_ = {double(s_.reset_burst), double(s_.reset_burst), double(s_.reset_rate), now};
  pings_ = {double(s_.ping_burst), double(s_.ping_burst), double(s_.ping_rate), now};
  settings_frames_ = {double(s_.settings_burst), double(s_.settings_burst), double(s_.settings_rate), now};

  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s_.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(std::min<std::size_t>(s_.max_header_list_size, UINT32_MAX))},
  };
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  if (s_.connection_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
    nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, static_cast<std::int32_t>(std::min<std::uint32_t>(s_.connection_window, NGHTTP2_MAX_WINDOW_SIZE)));
}

h2_session::~h2_session() { nghttp2_session_del(ng_); }

h2_stream& h2_session::open_stream(std::int32_t id) {
  auto& p = streams_[id];
  if (!p) p = std::make_unique<h2_stream>();
  auto& st = *p;
  st.id = id;
  st.opened = st.progress = h2_clock::now();
  st.req.stop_ = stop_;
  st.req.version_ = 20;
  st.req.keep_alive_ = true;
  ++counters_.streams_opened;
  return st;
}

void h2_session::finish_headers(h2_stream& st) {
  auto& r = st.req;
  const char* a = r.arena_.data();
  r.headers_.clear();
  bool have_host = false;
  std::string_view authority;
  for (std::size_t i = 0; i + 2 < st.offs.size(); i += 3) {
    std::string_view n{a + st.offs[i], st.offs[i + 1] - st.offs[i]};
    std::string_view v{a + st.offs[i + 1], st.offs[i + 2] - st.offs[i + 1]};
    if (!n.empty() && n[0] == ':') {
      if (n == ":method") r.method_ = v;
      else if (n == ":path") r.target_ = v;
      else if (n == ":authority") authority = v;
      continue;
    }
    if (n == "host") have_host = true;
    r.headers_.push_back({n, v});
  }
  // Handlers written for HTTP/1.1 read Host; HTTP/2 carries it as :authority (RFC 9113 8.3.1).
  if (!have_host && !authority.empty()) r.headers_.push_back({"host", authority});
  auto q = r.target_.find('?');
  r.path_ = r.target_.substr(0, q);
  r.query_ = q == std::string_view::npos ? std::string_view{} : r.target_.substr(q + 1);
  r.received_ = h2_clock::now();
  st.head = r.method_ == "HEAD";
  st.headers_done = true;
  st.offs.clear();
  st.offs.shrink_to_fit();
  if (st.error_status) make_ready(st);  // 431: no body is read for it
}

void h2_session::copy_request(h2_stream& st, const http::request& from) {
  auto& r = st.req;
  r.arena_.clear();
  std::vector<std::uint32_t> offs;
  auto put = [&](std::string_view n, std::string_view v) {
    offs.push_back(static_cast<std::uint32_t>(r.arena_.size()));
    r.arena_.append(n);
    offs.push_back(static_cast<std::uint32_t>(r.arena_.size()));
    r.arena_.append(v);
    offs.push_back(static_cast<std::uint32_t>(r.arena_.size()));
  };
  put(":method", from.method());
  put(":path", from.target());
  for (auto& h : from.headers()) {
    // Hop-by-hop fields of the upgrade request mean nothing on stream 1.
    if (iequals(h.name, "connection") || iequals(h.name, "upgrade") || iequals(h.name, "http2-settings")) continue;
    std::string name(h.name);
    for (auto& c : name) c = ascii_lower(c);
    put(name, h.value);
  }
  st.offs = std::move(offs);
  r.body_ = from.body();
  r.stop_ = from.stop_;
  const char* a = r.arena_.data();
  r.headers_.clear();
  for (std::size_t i = 6; i + 2 < st.offs.size(); i += 3)
    r.headers_.push_back({{a + st.offs[i], st.offs[i + 1] - st.offs[i]}, {a + st.offs[i + 1], st.offs[i + 2] - st.offs[i + 1]}});
  r.method_ = {a + st.offs[1], st.offs[2] - st.offs[1]};
  r.target_ = {a + st.offs[4], st.offs[5] - st.offs[4]};
  auto q = r.target_.find('?');
  r.path_ = r.target_.substr(0, q);
  r.query_ = q == std::string_view::npos ? std::string_view{} : r.target_.substr(q + 1);
  r.received_ = from.received();
  st.head = r.method_ == "HEAD";
  st.headers_done = true;
  st.offs.clear();
}

h2_stream* h2_session::upgrade(std::string_view settings, bool head_request) {
  int rv = nghttp2_session_upgrade2(ng_, reinterpret_cast<const std::uint8_t*>(settings.data()), settings.size(),
                                    head_request ? 1 : 0, nullptr);
  if (rv != 0) {
    error_ = nghttp2_strerror(rv);
    return nullptr;
  }
  auto& st = open_stream(1);
  max_seen_id_ = 1;
  st.headers_done = st.request_complete = true;  // the HTTP/1.1 request was read whole before the 101
  st.queued = st.dispatched = true;
  return &st;
}

void h2_session::make_ready(h2_stream& st) {
  if (st.queued) return;
  st.queued = true;
  ready_.push_back(st.id);
}

std::vector<h2_stream*> h2_session::take_ready() {
  std::vector<h2_stream*> out;
  for (auto id : ready_) {
    h2_stream* st = find(id);
    // A stream reset before it was dispatched costs nothing more (rapid reset does no work).
    if (!st || st->closed || st->dispatched) continue;
    st->dispatched = true;
    out.push_back(st);
  }
  ready_.clear();
  return out;
}

h2_stream* h2_session::find(std::int32_t id) noexcept {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void h2_session::erase(std::int32_t id) { streams_.erase(id); }

// ---- I/O ----

bool h2_session::feed(const char* p, std::size_t n) {
  if (failed_) return false;
  auto rv = nghttp2_session_mem_recv(ng_, reinterpret_cast<const std::uint8_t*>(p), n);
  if (rv < 0) {
    failed_ = true;
    if (error_.empty()) error_ = nghttp2_strerror(static_cast<int>(rv));
    if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
      log().warn("http2: {}: {}: connection closed", s_.peer, error_);
    return false;
  }
  return !failed_;
}

bool h2_session::produce(std::string& out, std::size_t max) {
  std::size_t start = out.size();
  while (out.size() - start < max) {
    const std::uint8_t* data = nullptr;
    auto n = nghttp2_session_mem_send(ng_, &data);
    if (n < 0) {
      failed_ = true;
      if (error_.empty()) error_ = nghttp2_strerror(static_cast<int>(n));
      return false;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  return true;
}

bool h2_session::want_write() const noexcept { return nghttp2_session_want_write(ng_) != 0; }

// ---- responses ----

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

// ---- shutdown and abuse ----

spdlog::logger& h2_session::log() const noexcept { return log_ ? *log_ : *spdlog::default_logger_raw(); }

void h2_session::send_ping(const char (&payload)[9]) {
  nghttp2_submit_ping(ng_, NGHTTP2_FLAG_NONE, reinterpret_cast<const std::uint8_t*>(payload));
}

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
  // Its PING follows from on_frame_send; the ACK proves the client read it: we may close.
  nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, final_id_, NGHTTP2_NO_ERROR, nullptr, 0);
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

bool h2_session::finished(bool ack_wait_over) const noexcept {
  if (want_write()) return false;
  if (failed_) return true;
  if (!streams_.empty()) return false;
  if (peer_goaway_) return true;
  return phase_ == phase::goaway_sent && (ping2_acked_ || ack_wait_over);
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

// ---- helpers ----

std::string_view h2_preface() noexcept { return {NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN}; }

bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-' || c == '+') v = 62;
    else if (c == '_' || c == '/') v = 63;
    else if (c == '=') break;
    else return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

} // namespace graceful::http::detail
