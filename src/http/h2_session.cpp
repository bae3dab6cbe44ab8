// h2_session: the nghttp2 server session it wraps (options and SETTINGS), the stream table
// (requests built from decoded fields, the h2c upgrade's stream 1, the ready list), and the
// byte interface (feed, produce). Callbacks, responses and limits are in the files beside it.
#include "http/h2_session_callbacks.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "core/ascii.hpp"
#include "http/message_access.hpp"

namespace graceful::http::detail {

using graceful::detail::ascii_lower;
using graceful::detail::iequals;

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
  message_access::start_h2(st.req, stop_);
  ++counters_.streams_opened;
  return st;
}

namespace {

/// The i-th (name, value) pair recorded in `offs` (three offsets per field) into `arena`.
std::pair<std::string_view, std::string_view> field_at(const std::string& arena, const std::vector<std::uint32_t>& offs,
                                                       std::size_t i) {
  const char* a = arena.data();
  return {{a + offs[i], offs[i + 1] - offs[i]}, {a + offs[i + 1], offs[i + 2] - offs[i + 1]}};
}

} // namespace

void h2_session::finish_headers(h2_stream& st) {
  auto& r = st.req;
  auto& fields = message_access::fields(r);
  fields.clear();
  bool have_host = false;
  std::string_view method, target, authority;
  for (std::size_t i = 0; i + 2 < st.offs.size(); i += 3) {
    auto [n, v] = field_at(message_access::arena(r), st.offs, i);
    if (!n.empty() && n[0] == ':') {
      if (n == ":method") method = v;
      else if (n == ":path") target = v;
      else if (n == ":authority") authority = v;
      continue;
    }
    if (n == "host") have_host = true;
    fields.push_back({n, v});
  }
  // Handlers written for HTTP/1.1 read Host; HTTP/2 carries it as :authority (RFC 9113 8.3.1).
  if (!have_host && !authority.empty()) fields.push_back({"host", authority});
  message_access::set_head(r, method, target, h2_clock::now());
  st.head = method == "HEAD";
  st.headers_done = true;
  st.offs.clear();
  st.offs.shrink_to_fit();
  if (st.error_status) make_ready(st);  // 431: no body is read for it
}

void h2_session::copy_request(h2_stream& st, const http::request& from) {
  auto& r = st.req;
  auto& arena = message_access::arena(r);
  arena.clear();
  std::vector<std::uint32_t> offs;
  auto put = [&](std::string_view n, std::string_view v) {
    offs.push_back(static_cast<std::uint32_t>(arena.size()));
    arena.append(n);
    offs.push_back(static_cast<std::uint32_t>(arena.size()));
    arena.append(v);
    offs.push_back(static_cast<std::uint32_t>(arena.size()));
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
  message_access::body(r) = from.body();
  message_access::start_h2(r, message_access::stop(from));
  // Views only now that the arena is complete (appending may have moved it).
  auto& fields = message_access::fields(r);
  fields.clear();
  for (std::size_t i = 6; i + 2 < offs.size(); i += 3) {
    auto [n, v] = field_at(arena, offs, i);
    fields.push_back({n, v});
  }
  auto method = field_at(arena, offs, 0).second;
  message_access::set_head(r, method, field_at(arena, offs, 3).second, from.received());
  st.head = method == "HEAD";
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
    refuse_.clear();
    failed_ = true;
    if (error_.empty()) error_ = nghttp2_strerror(static_cast<int>(rv));
    if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
      log().warn("http2: {}: {}: connection closed", s_.peer, error_);
    return false;
  }
  refuse_pending();
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
