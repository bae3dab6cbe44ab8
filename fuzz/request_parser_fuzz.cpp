// libFuzzer target: arbitrary bytes through graceful::http's request parser, driven the way
// a connection drives it (src/http/server.cpp serve()): bytes arrive in pieces, unconsumed
// header bytes are kept and more appended, a complete request starts the next one on the
// same buffer (pipelining), and the client may half-close at the end.
//
// Properties checked beyond "no crash / no sanitizer report":
//  - feed() never consumes more than it was given;
//  - an error always carries one of the statuses the server documents (400 413 431 501 505);
//  - the parser always makes progress or asks for more (no livelock on any input).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <graceful/http/message.hpp>
#include "http/request_parser.hpp"

namespace {

using graceful::http::detail::parse_limits;
using graceful::http::detail::request_parser;
using state = request_parser::state;

void check(bool ok) {
  if (!ok) std::abort();
}

bool documented_status(int s) { return s == 400 || s == 413 || s == 431 || s == 501 || s == 505; }

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // First byte: how the bytes arrive (piece size 1..64, or all at once) and whether the
  // limits are small enough for the fuzzer to reach 413/431 cheaply.
  const unsigned ctl = data[0];
  ++data;
  --size;
  const std::size_t piece = (ctl & 0x3f) == 0 ? size + 1 : (ctl & 0x3f);
  parse_limits limits;
  if (ctl & 0x40) limits = parse_limits{256, 512};

  request_parser p(limits);
  graceful::http::request req;
  std::string in;  // the connection's input buffer
  std::size_t pos = 0;
  int requests = 0;
  p.start(req);
  for (;;) {
    // Deliver the next piece of input, as one read() would.
    if (pos < size) {
      std::size_t n = std::min(piece, size - pos);
      in.append(reinterpret_cast<const char*>(data) + pos, n);
      pos += n;
    }
    bool progressed = true;
    while (!in.empty() && progressed) {
      std::size_t before = in.size();
      std::size_t n = p.feed(in.data(), in.size());
      check(n <= before);
      in.erase(0, n);
      progressed = n > 0;
      state st = p.current();
      if (st == state::error) {
        check(documented_status(p.error_status()));
        check(!p.error_reason().empty());
        return 0;  // the server answers and closes
      }
      if (st == state::complete) {
        // Touch what a handler would read, so the sanitizers see every view used.
        volatile std::size_t touched = req.method().size() + req.target().size() + req.body().size();
        for (const auto& h : req.headers()) touched = touched + h.name.size() + h.value.size();
        (void)touched;
        if (++requests > 10000) return 0;
        p.start(req);  // pipelined: the rest of `in` is the next request
        progressed = true;
      }
    }
    if (pos >= size) break;
  }
  // The client half-closes: a body delimited by EOF may complete, anything else is dropped.
  if (p.got_some()) {
    state st = p.feed_eof();
    if (st == state::error) check(documented_status(p.error_status()));
  }
  return 0;
}
