// libFuzzer target: arbitrary bytes as the client side of an HTTP/2 connection, after the
// connection preface (prepended, so that every input reaches the frame layer), fed to the
// server's session (src/http/h2_session) in pieces, with an owner that answers the way the
// HTTP/2 connection does: whole responses, streamed DATA (held back by flow control),
// error statuses, releases after the handler; halfway through, the two-phase shutdown
// starts and the timeouts fire.
//
// Properties checked beyond "no crash / no sanitizer report / no leak":
//  - the session always ends: after the input, shutdown and the caps, finished() holds
//    once nothing is left to send (no state in which a connection cannot close);
//  - every stream handed out is handed out once.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "http/h2_session.hpp"

namespace {

using graceful::http::detail::h2_clock;
using graceful::http::detail::h2_session;
using graceful::http::detail::h2_settings;
using graceful::http::detail::h2_stream;
using namespace std::chrono_literals;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "h2_server_fuzz: %s\n", what);
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  h2_settings s;
  s.max_body_bytes = 4096;          // small limits so that inputs reach 413/431 too
  s.max_header_list_size = 2048;
  s.max_concurrent_streams = 8;
  s.reset_burst = 20;
  s.ping_burst = 20;
  s.settings_burst = 20;
  h2_session session(s);
  std::set<std::int32_t> handed_out;
  std::vector<h2_stream*> streaming;  // held like a coroutine handler holds its stream
  std::string out;

  auto dispatch = [&] {
    for (h2_stream* st : session.take_ready()) {
      check(handed_out.insert(st->id).second, "a stream was handed out twice");
      if (st->error_status) {
        st->res.status = st->error_status;
        session.respond(*st, "d");
        session.release(*st);
      } else if (st->req.path() == "/stream" || st->id % 3 == 0) {
        session.start_streaming(*st, "d");
        session.write(*st, std::string(100 * 1024, 's'));  // beyond any default window
        streaming.push_back(st);
      } else {
        st->res.body = std::string(st->req.path()) + st->req.body();
        session.respond(*st, "d");
        session.release(*st);
      }
    }
  };
  auto drain = [&] {
    out.clear();
    session.produce(out);
  };

  auto preface = graceful::http::detail::h2_preface();
  session.feed(preface.data(), preface.size());
  // Pieces of varying size, as reads from a socket would deliver them.
  std::size_t i = 0, piece = 1;
  bool shutdown_started = false;
  while (i < size) {
    std::size_t n = std::min(size - i, piece);
    bool alive = session.feed(reinterpret_cast<const char*>(data) + i, n);
    i += n;
    piece = piece * 3 % 977 + 1;
    dispatch();
    drain();
    if (!alive) break;
    if (!shutdown_started && i >= size / 2) {
      shutdown_started = true;
      session.begin_shutdown();
    }
  }
  // Handlers finish; shutdown runs its course with the owner's caps (no ACK will come).
  for (h2_stream* st : streaming) {
    session.end(*st);
    session.release(*st);
  }
  session.begin_shutdown();
  session.final_goaway();
  session.expire(h2_clock::now() + 1h, 10s, 60s, 30s);
  dispatch();
  for (int k = 0; k < 4; ++k) drain();
  check(session.finished(), "the session cannot finish after shutdown, the caps and the timeouts");
  return 0;
}
