#pragma once
// h2_session's nghttp2 callbacks, shared by the files that implement it: the receive side
// and the frame/stream events are in h2_session_callbacks.cpp, the DATA source of responses
// (read_data) in h2_session_response.cpp. Each returns what nghttp2's callback types expect.

#include <sys/types.h>  // ssize_t

#include <cstdint>

#include <nghttp2/nghttp2.h>

#include "http/h2_session.hpp"

namespace graceful::http::detail {

/// The payload of the PING that follows the shutdown notice; a client's own PINGs never
/// carry it, so its ACK is recognised as the answer to the notice.
inline constexpr char shutdown_ping_payload[9] = "gfshut-1";

inline bool has_flag(std::uint8_t flags, std::uint8_t f) noexcept { return (flags & f) != 0; }

struct h2_session::callbacks {
  static h2_session& self(void* u) { return *static_cast<h2_session*>(u); }

  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* u);
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* u);
  static int on_data_chunk(nghttp2_session*, std::uint8_t flags, std::int32_t id, const std::uint8_t* data,
                           std::size_t len, void* u);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* u);
  /// DATA source of every response body: the stream's buffered bytes (h2_session_response.cpp).
  static ssize_t read_data(nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t len,
                           std::uint32_t* flags, nghttp2_data_source*, void* u);
};

} // namespace graceful::http::detail
