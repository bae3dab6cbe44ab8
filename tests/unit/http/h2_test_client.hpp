#pragma once
// Test support for the HTTP/2 unit tests: nghttp2's own client session with recording
// callbacks (what a client observes: statuses, bodies, RST_STREAM and GOAWAY codes), fed and
// drained in memory, and a splitter of raw bytes into frames.
#include <sys/types.h>  // ssize_t

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

namespace graceful::test::h2 {

/// What the client saw of one stream.
struct seen {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  bool closed = false;
  std::uint32_t close_code = 0;
  bool rst_received = false;
  std::uint32_t rst_code = 0;
};

/// nghttp2's client session with recording callbacks.
struct client {
  nghttp2_session* ng = nullptr;
  std::map<std::int32_t, seen> streams;
  std::vector<std::pair<std::int32_t, std::uint32_t>> goaways;  // (last_stream_id, error_code)

  explicit client(std::vector<nghttp2_settings_entry> settings = {}, bool auto_window = true) {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl, const std::uint8_t* v,
               std::size_t vl, std::uint8_t, void* u) {
          auto& s = static_cast<client*>(u)->streams[f->hd.stream_id];
          std::string name(reinterpret_cast<const char*>(n), nl), value(reinterpret_cast<const char*>(v), vl);
          if (name == ":status") s.status = std::stoi(value);
          else s.headers[name] = value;
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d, std::size_t l, void* u) {
          static_cast<client*>(u)->streams[id].body.append(reinterpret_cast<const char*>(d), l);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, [](nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
      auto& s = static_cast<client*>(u)->streams[id];
      s.closed = true;
      s.close_code = code;
      return 0;
    });
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
      auto* c = static_cast<client*>(u);
      if (f->hd.type == NGHTTP2_GOAWAY) c->goaways.emplace_back(f->goaway.last_stream_id, f->goaway.error_code);
      if (f->hd.type == NGHTTP2_RST_STREAM) {
        c->streams[f->hd.stream_id].rst_received = true;
        c->streams[f->hd.stream_id].rst_code = f->rst_stream.error_code;
      }
      return 0;
    });
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    if (!auto_window) nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_client_new2(&ng, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }
  ~client() { nghttp2_session_del(ng); }

  std::int32_t request(const std::string& method, const std::string& path, const std::string& body = {},
                       std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> h = {
        {":method", method}, {":scheme", "http"}, {":authority", "test.local"}, {":path", path}};
    for (auto& e : extra) h.push_back(e);
    std::vector<nghttp2_nv> nv;
    for (auto& [k, v] : h)
      nv.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()), k.size(),
                    v.size(), NGHTTP2_NV_FLAG_NONE});
    if (body.empty()) return nghttp2_submit_request(ng, nullptr, nv.data(), nv.size(), nullptr, nullptr);
    bodies.push_back(std::make_unique<std::pair<std::string, std::size_t>>(body, 0));
    nghttp2_data_provider p{};
    p.source.ptr = bodies.back().get();
    p.read_callback = &read_body;
    return nghttp2_submit_request(ng, nullptr, nv.data(), nv.size(), &p, nullptr);
  }
  std::vector<std::unique_ptr<std::pair<std::string, std::size_t>>> bodies;

  /// Opens a request stream whose body is still to come (HEADERS without END_STREAM): the
  /// stream stays open on the server until end_request(), whatever the clock says.
  std::int32_t open_request(const std::string& method, const std::string& path) {
    std::vector<std::pair<std::string, std::string>> h = {
        {":method", method}, {":scheme", "http"}, {":authority", "test.local"}, {":path", path}};
    std::vector<nghttp2_nv> nv;
    for (auto& [k, v] : h)
      nv.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()), k.size(),
                    v.size(), NGHTTP2_NV_FLAG_NONE});
    return nghttp2_submit_headers(ng, NGHTTP2_FLAG_NONE, -1, nullptr, nv.data(), nv.size(), nullptr);
  }
  /// Sends the body of a stream opened with open_request(), with END_STREAM.
  bool end_request(std::int32_t id, const std::string& body) {
    bodies.push_back(std::make_unique<std::pair<std::string, std::size_t>>(body, 0));
    nghttp2_data_provider p{};
    p.source.ptr = bodies.back().get();
    p.read_callback = &read_body;
    return nghttp2_submit_data(ng, NGHTTP2_FLAG_END_STREAM, id, &p) == 0;
  }
  static ssize_t read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len, std::uint32_t* flags,
                           nghttp2_data_source* src, void*) {
    auto* b = static_cast<std::pair<std::string, std::size_t>*>(src->ptr);
    std::size_t n = std::min(len, b->first.size() - b->second);
    std::memcpy(buf, b->first.data() + b->second, n);
    b->second += n;
    if (b->second == b->first.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  /// Bytes the client wants to send.
  std::string out() {
    std::string s;
    for (;;) {
      const std::uint8_t* d;
      auto n = nghttp2_session_mem_send(ng, &d);
      if (n <= 0) break;
      s.append(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
    }
    return s;
  }
  void in(const std::string& b) {
    auto rv = nghttp2_session_mem_recv(ng, reinterpret_cast<const std::uint8_t*>(b.data()), b.size());
    ASSERT_EQ(rv, static_cast<ssize_t>(b.size())) << nghttp2_strerror(static_cast<int>(rv));
  }
};

/// Splits a byte string of whole frames into frames.
inline std::vector<std::string> frames_of(const std::string& b) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i + 9 <= b.size()) {
    auto* u = reinterpret_cast<const unsigned char*>(b.data() + i);
    std::size_t len = (std::size_t(u[0]) << 16) | (std::size_t(u[1]) << 8) | u[2];
    out.push_back(b.substr(i, 9 + len));
    i += 9 + len;
  }
  return out;
}
inline int frame_type(const std::string& f) { return static_cast<unsigned char>(f[3]); }

} // namespace graceful::test::h2
