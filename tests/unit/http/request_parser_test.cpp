// The request parser alone: every kind of bad input maps to its status, and no byte
// sequence crashes it (the fuzz target goes further; this is the fast guard in every run).
#include "http/request_parser.hpp"

#include <random>
#include <string>

#include <gtest/gtest.h>

using graceful::http::request;
using graceful::http::detail::parse_limits;
using graceful::http::detail::request_parser;
using state = request_parser::state;

namespace {

struct parsed {
  state st;
  int status;
  std::size_t used;
};

parsed parse(request_parser& p, request& r, std::string_view bytes) {
  p.start(r);
  auto used = p.feed(bytes.data(), bytes.size());
  return {p.current(), p.error_status(), used};
}

} // namespace

TEST(request_parser, parses_method_target_headers_and_query) {
  request_parser p;
  request r;
  auto res = parse(p, r, "GET /slow?ms=10&x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v  \r\n\r\n");
  ASSERT_EQ(res.st, state::complete);
  EXPECT_EQ(r.method(), "GET");
  EXPECT_EQ(r.target(), "/slow?ms=10&x=1");
  EXPECT_EQ(r.path(), "/slow");
  EXPECT_EQ(r.query_param("ms"), "10");
  EXPECT_EQ(r.query_param("x"), "1");
  EXPECT_FALSE(r.query_param("y"));
  EXPECT_EQ(r.header("x-thing"), "v");
  EXPECT_EQ(r.version(), 11);
  EXPECT_TRUE(r.keep_alive());
}

TEST(request_parser, stops_at_the_end_of_one_request_so_pipelined_ones_stay_for_later) {
  request_parser p;
  request r;
  std::string two = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
  auto res = parse(p, r, two);
  ASSERT_EQ(res.st, state::complete);
  EXPECT_EQ(r.path(), "/a");
  auto rest = std::string_view(two).substr(res.used);
  auto res2 = parse(p, r, rest);
  ASSERT_EQ(res2.st, state::complete);
  EXPECT_EQ(r.path(), "/b");
  EXPECT_EQ(res2.used, rest.size());
}

TEST(request_parser, header_split_across_reads_needs_more_then_completes) {
  request_parser p;
  request r;
  std::string all = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  p.start(r);
  EXPECT_EQ(p.feed(all.data(), 10), 0u);
  EXPECT_EQ(p.current(), state::need_more);
  auto used = p.feed(all.data(), all.size() - 2);  // header + "hel"
  EXPECT_EQ(p.current(), state::header_done);
  used += p.feed(all.data() + used, all.size() - used);
  EXPECT_EQ(p.current(), state::complete);
  EXPECT_EQ(r.body(), "hello");
}

TEST(request_parser, decodes_chunked_body) {
  request_parser p;
  request r;
  auto res = parse(p, r, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ASSERT_EQ(res.st, state::complete);
  EXPECT_EQ(r.body(), "abcde");
}

TEST(request_parser, chunked_trailer_fields_are_dropped_and_leave_the_header_intact) {
  request_parser p;
  request r;
  // A trailer large enough to make the header storage grow (a fuzzer find: the views into
  // it dangled, then method() read freed memory).
  std::string trailer(4000, 't');
  auto res = parse(p, r,
                   "POST /echo HTTP/1.1\r\nHost: a\r\nX-Kept: yes\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n0\r\nX-Trailer: " + trailer + "\r\n\r\n");
  ASSERT_EQ(res.st, state::complete);
  EXPECT_EQ(r.method(), "POST");
  EXPECT_EQ(r.target(), "/echo");
  EXPECT_EQ(r.header("X-Kept"), "yes");
  EXPECT_EQ(r.header("Host"), "a");
  EXPECT_FALSE(r.header("X-Trailer"));
  EXPECT_EQ(r.body(), "hello");
}

TEST(request_parser, reports_expect_100_continue) {
  request_parser p;
  request r;
  auto res = parse(p, r, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(res.st, state::header_done);
  EXPECT_TRUE(p.expect_continue());
}

TEST(request_parser, garbage_is_400) {
  request_parser p;
  request r;
  EXPECT_EQ(parse(p, r, "\x01\x02 nonsense\r\n\r\n").status, 400);
  EXPECT_EQ(parse(p, r, "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n").status, 400);
  EXPECT_EQ(parse(p, r, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n").status, 400);
}

TEST(request_parser, http11_without_host_is_400) {
  request_parser p;
  request r;
  auto res = parse(p, r, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(res.st, state::error);
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(parse(p, r, "GET / HTTP/1.0\r\n\r\n").st, state::complete);
}

TEST(request_parser, header_larger_than_limit_is_431) {
  request_parser p(parse_limits{1024, 1 << 20});
  request r;
  std::string big = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  auto res = parse(p, r, big);
  EXPECT_EQ(res.st, state::error);
  EXPECT_EQ(res.status, 431);
}

TEST(request_parser, declared_body_larger_than_limit_is_413_before_the_body_arrives) {
  request_parser p(parse_limits{1024, 100});
  request r;
  auto res = parse(p, r, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n");
  EXPECT_EQ(res.st, state::error);
  EXPECT_EQ(res.status, 413);
}

TEST(request_parser, chunked_body_larger_than_limit_is_413) {
  request_parser p(parse_limits{1024, 4});
  request r;
  auto res = parse(p, r, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
  EXPECT_EQ(res.st, state::error);
  EXPECT_EQ(res.status, 413);
}

TEST(request_parser, unsupported_transfer_coding_is_501) {
  request_parser p;
  request r;
  EXPECT_EQ(parse(p, r, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n").status, 501);
  EXPECT_EQ(parse(p, r, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").status, 501);
}

TEST(request_parser, content_length_with_transfer_encoding_is_400) {
  // Both framings at once is the classic request-smuggling shape (RFC 9112 6.3).
  request_parser p;
  request r;
  EXPECT_EQ(parse(p, r, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").status, 400);
}

TEST(request_parser, unknown_http_version_is_505) {
  request_parser p;
  request r;
  EXPECT_EQ(parse(p, r, "GET / HTTP/2.0\r\nHost: a\r\n\r\n").status, 505);
}

TEST(request_parser, random_and_mutated_bytes_never_crash) {
  std::mt19937 rng(12345);
  request_parser p(parse_limits{512, 1024});
  request r;
  const std::string seeds[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody",
  };
  for (int i = 0; i < 3000; ++i) {
    std::string s = seeds[static_cast<std::size_t>(i) % 3];
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      auto pos = rng() % (s.size() + 1);
      switch (rng() % 3) {
        case 0: if (pos < s.size()) s[pos] = static_cast<char>(rng()); break;
        case 1: s.insert(pos, 1, static_cast<char>(rng())); break;
        case 2: if (pos < s.size()) s.erase(pos, 1 + rng() % 4); break;
      }
    }
    p.start(r);
    std::size_t off = 0, end = 0;
    // Feed growing random slices, keeping unconsumed bytes like the server does.
    while (off < s.size() && p.current() != state::error && p.current() != state::complete) {
      end = std::min(s.size(), std::max(end, off) + 1 + rng() % 16);
      auto used = p.feed(s.data() + off, end - off);
      off += used;
      if (used == 0 && end == s.size()) break;
    }
    p.feed_eof();
    if (p.current() == state::error) {
      EXPECT_TRUE(p.error_status() >= 400 && p.error_status() < 600);
    }
  }
}
