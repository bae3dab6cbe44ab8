// The only translation unit that includes Beast: it is heavy to compile, and the rest of
// the server only needs bytes in, request out.
#include "http/request_parser.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include "core/ascii.hpp"
#include "http/message_access.hpp"

namespace graceful::http::detail {

namespace bhttp = boost::beast::http;
using boost::beast::error_code;

namespace {

using graceful::detail::iequals;

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True when the Transfer-Encoding value is exactly "chunked" (any case, optional blanks).
// Any other coding (gzip, deflate, identity...) is one we do not implement: RFC 9112 6.1
// says to answer 501; accepting it would also misframe the body (request smuggling).
bool only_chunked(std::string_view v) noexcept { return iequals(trim(v), "chunked"); }

// Why a request was refused, kept beside Beast's error so the status can be chosen.
enum class refusal { none, unsupported_coding, no_host, bad_version };

} // namespace

struct request_parser::impl final : bhttp::basic_parser<true> {
  request_parser& owner;
  parse_limits limits;
  request* req = nullptr;
  refusal why = refusal::none;
  bool has_host = false;
  // Offsets into the request's arena: it may reallocate while the header is copied, so
  // views are made only once the header is complete.
  struct span { std::uint32_t name_off, name_len, value_off, value_len; };
  std::vector<span> spans;
  std::uint32_t method_len = 0, target_len = 0;

  impl(request_parser& o, parse_limits l) : owner(o), limits(l) {}

  std::uint32_t append(std::string_view s) {
    auto& arena = message_access::arena(*req);
    auto off = static_cast<std::uint32_t>(arena.size());
    arena.append(s.data(), s.size());
    return off;
  }

  void on_request_impl(bhttp::verb, boost::beast::string_view method, boost::beast::string_view target,
                       int version, error_code& ec) override {
    if (version != 10 && version != 11) {
      why = refusal::bad_version;
      ec = bhttp::error::bad_version;
      return;
    }
    message_access::set_version(*req, version);
    append({method.data(), method.size()});
    method_len = static_cast<std::uint32_t>(method.size());
    append({target.data(), target.size()});
    target_len = static_cast<std::uint32_t>(target.size());
  }
  void on_response_impl(int, boost::beast::string_view, int, error_code& ec) override {
    ec = bhttp::error::bad_version;  // never called for a request parser
  }
  void on_field_impl(bhttp::field f, boost::beast::string_view name, boost::beast::string_view value,
                     error_code& ec) override {
    // Trailer fields of a chunked body arrive here too, after on_header_impl made the
    // request's views into the arena: appending would reallocate it under them (found by
    // fuzz/http_server_fuzz). Trailers are dropped, as RFC 9110 6.5.1 allows.
    if (is_header_done()) return;
    std::string_view v{value.data(), value.size()};
    if (f == bhttp::field::transfer_encoding && !only_chunked(v)) {
      why = refusal::unsupported_coding;
      ec = bhttp::error::bad_transfer_encoding;
      return;
    }
    if (f == bhttp::field::host) has_host = true;
    if (f == bhttp::field::expect && iequals(trim(v), "100-continue")) owner.expect_continue_ = true;
    span s;
    s.name_off = append({name.data(), name.size()});
    s.name_len = static_cast<std::uint32_t>(name.size());
    s.value_off = append(v);
    s.value_len = static_cast<std::uint32_t>(v.size());
    spans.push_back(s);
  }
  void on_header_impl(error_code& ec) override {
    // RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    if (message_access::version(*req) == 11 && !has_host) {
      why = refusal::no_host;
      ec = bhttp::error::bad_value;
      return;
    }
    const char* a = message_access::arena(*req).data();
    message_access::set_target(*req, {a, method_len}, {a + method_len, target_len});
    auto& fields = message_access::fields(*req);
    fields.clear();
    for (auto& s : spans) fields.push_back({{a + s.name_off, s.name_len}, {a + s.value_off, s.value_len}});
    message_access::set_keep_alive(*req, keep_alive());
    if (message_access::version(*req) != 11) owner.expect_continue_ = false;
  }
  void on_body_init_impl(boost::optional<std::uint64_t> const& n, error_code&) override {
    // Content-Length is already checked against body_limit by Beast (413 before reading).
    if (n && *n <= 64 * 1024) message_access::body(*req).reserve(static_cast<std::size_t>(*n));
  }
  std::size_t on_body_impl(boost::beast::string_view b, error_code&) override {
    message_access::body(*req).append(b.data(), b.size());
    return b.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view b, error_code&) override {
    message_access::body(*req).append(b.data(), b.size());
    return b.size();
  }
  void on_finish_impl(error_code&) override {}

  void fail(const error_code& ec) {
    owner.state_ = request_parser::state::error;
    if (why == refusal::unsupported_coding) {
      owner.error_status_ = 501;
      owner.error_reason_ = "unsupported transfer coding (only chunked is implemented)";
    } else if (why == refusal::bad_version || ec == bhttp::error::bad_version) {
      owner.error_status_ = 505;
      owner.error_reason_ = "HTTP version not supported (only HTTP/1.0 and HTTP/1.1)";
    } else if (why == refusal::no_host) {
      owner.error_status_ = 400;
      owner.error_reason_ = "HTTP/1.1 request without Host header";
    } else if (ec == bhttp::error::header_limit) {
      owner.error_status_ = 431;
      owner.error_reason_ = "request header too large";
    } else if (ec == bhttp::error::body_limit) {
      owner.error_status_ = 413;
      owner.error_reason_ = "request body too large";
    } else {
      owner.error_status_ = 400;
      owner.error_reason_ = "malformed request";
    }
  }
};

request_parser::request_parser(parse_limits l) : impl_(std::make_unique<impl>(*this, l)) {}
request_parser::~request_parser() = default;

void request_parser::start(request& into) {
  // basic_parser cannot be reset, so a fresh one is made per message; it holds no heap
  // memory, so this costs a few stores. Our own buffers (spans, the request's strings)
  // keep their capacity.
  auto spans = std::move(impl_->spans);
  auto limits = impl_->limits;
  impl_->~impl();
  new (impl_.get()) impl(*this, limits);
  impl_->spans = std::move(spans);
  impl_->spans.clear();
  impl_->req = &into;
  impl_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(limits.max_header_bytes, UINT32_MAX)));
  impl_->body_limit(static_cast<std::uint64_t>(limits.max_body_bytes));
  message_access::reset(into);
  state_ = state::need_more;
  error_status_ = 0;
  error_reason_ = {};
  expect_continue_ = false;
}

std::size_t request_parser::feed(const char* data, std::size_t size) {
  if (state_ == state::error || state_ == state::complete || size == 0) return 0;
  error_code ec;
  std::size_t used = 0;
  // Parse as far as the bytes go: header, then body pieces, until complete or need_more.
  impl_->eager(true);
  while (used < size && !impl_->is_done()) {
    auto n = impl_->put(boost::asio::const_buffer(data + used, size - used), ec);
    used += n;
    if (ec == bhttp::error::need_more) { ec = {}; break; }
    if (ec) { impl_->fail(ec); return used; }
    if (n == 0) break;
  }
  if (impl_->is_done()) state_ = state::complete;
  else if (impl_->is_header_done()) state_ = state::header_done;
  return used;
}

request_parser::state request_parser::feed_eof() {
  if (state_ == state::error || state_ == state::complete) return state_;
  error_code ec;
  impl_->put_eof(ec);
  if (ec) impl_->fail(ec);
  else if (impl_->is_done()) state_ = state::complete;
  return state_;
}

bool request_parser::got_some() const noexcept { return impl_->got_some(); }

std::optional<std::uint64_t> request_parser::content_length() const noexcept {
  auto n = impl_->content_length();
  if (n) return *n;
  return std::nullopt;
}

} // namespace graceful::http::detail
