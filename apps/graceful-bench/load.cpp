// The HTTP/1.1 client of the load engine (engine.hpp has the protocol-independent half).
// The only translation unit that includes Beast: keeps graceful-bench's build cheap.
#include "engine.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

namespace graceful::bench {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

/// A response parser that keeps only what the accounting needs (the status code; framing and
/// keep-alive are tracked by basic_parser itself) and discards the body as it streams past:
/// no header map, no body storage, no allocation per response.
class response_sink final : public http::basic_parser<false> {
public:
  int status = 0;

private:
  void on_request_impl(http::verb, boost::beast::string_view, boost::beast::string_view, int,
                       error_code&) override {}
  void on_response_impl(int code, boost::beast::string_view, int, error_code&) override {
    status = code;
  }
  void on_field_impl(http::field, boost::beast::string_view, boost::beast::string_view,
                     error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view body, error_code&) override {
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                 error_code&) override {
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
};

/// One HTTP/1.1 client connection: one request in flight at a time (no pipelining, as
/// browsers and proxies do), kept alive between requests like a pooled client's.
///
/// Reuse follows a careful client (urllib3's is_connection_dropped, checked just before each
/// reuse; Go's Transport notices the same close with a background read): a keep-alive
/// connection on which a FIN, a RST or unsolicited bytes arrived while it sat idle is retired
/// and the request goes on a new connection — a reconnect, not a failure. A request written on
/// a connection that showed no such sign and then gets EOF or RST is a failure. --strict skips
/// the check (a naive client).
class connection final : public paced_client {
public:
  connection(worker& w, unsigned global_index);

  void check_timeout(clock::time_point now) override;

private:
  void begin(clock::time_point intended) override;
  void close_connection() override { close_socket(); }
  void connect();
  void send();
  void reset_parser();
  void read();
  void parse();
  void on_read_error(const error_code& ec);
  void complete(int status, bool keep_alive);
  void fail(outcome k);
  /// Drops the socket; the next connection this client opens replaced it because of `why`.
  void retire(reconnect_cause why) {
    close_socket();
    if (!p_.o.close) replaced_ = why;
  }
  void close_socket() {
    error_code ignored;
    sock_.close(ignored);
    have_ = 0;
  }

  // As wrk: 8 KiB per connection holds any response header Beast accepts (header_limit 8 KiB)
  // and keeps -c 10000 at 80 MB.
  static constexpr std::size_t buffer_size = 8 * 1024;

  tcp::socket sock_;
  std::optional<response_sink> parser_;
  std::unique_ptr<char[]> buf_;
  std::size_t have_ = 0;
  clock::time_point intended_{};   ///< when this request was meant to go (latency origin)
  clock::time_point deadline_{};   ///< when it times out
  /// Why the previous connection was retired; none before the first one opens.
  std::optional<reconnect_cause> replaced_;
  bool in_flight_ = false;
  bool timed_out_ = false;
};

connection::connection(worker& w, unsigned global_index)
    : paced_client(w, global_index), sock_(w.ioc()), buf_(new char[buffer_size]) {}

void connection::begin(clock::time_point intended) {
  intended_ = intended;
  deadline_ = clock::now() + p_.o.timeout;
  in_flight_ = true;
  timed_out_ = false;
  if (sock_.is_open()) {
    // Leftover bytes after a complete response are unsolicited too.
    if (p_.o.strict) return send();
    if (have_ == 0 && careful_reuse_check(sock_.native_handle()) == idle_state::usable) return send();
    retire(reconnect_cause::closed_while_idle);
  }
  connect();
}

void connection::connect() {
  // Our own socket() call so that the fd is close-on-exec: the --exec command (which may
  // start the server being tested) must not inherit client connections, or a server-side
  // close would never reach us.
  const int fd = ::socket(p_.endpoint.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(outcome::other);
  error_code ec;
  sock_.assign(p_.endpoint.protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return fail(outcome::other);
  }
  sock_.async_connect(p_.endpoint, [this](const error_code& cec) {
    if (cec) {
      if (timed_out_) return fail(outcome::timeout);
      if (cec == asio::error::connection_refused) return fail(outcome::connect_refused);
      if (cec == asio::error::connection_reset) return fail(outcome::connection_reset);
      return fail(outcome::other);
    }
    // TCP simultaneous open: while nothing listens on a port in the ephemeral range, connect()
    // can pick that same port as its local one and connect to itself (tcp(7)). That is a
    // refused connection in disguise, and it would hold the port the restarted server wants.
    error_code lec;
    if (sock_.local_endpoint(lec) == p_.endpoint && !lec) return fail(outcome::connect_refused);
    error_code ignored;
    sock_.set_option(tcp::no_delay(true), ignored);
    record_connection_opened(w_.stats, p_, replaced_, clock::now());
    send();
  });
}

void connection::send() {
  reset_parser();
  asio::async_write(sock_, asio::buffer(p_.request), [this](const error_code& ec, std::size_t) {
    if (ec) {
      if (timed_out_) return fail(outcome::timeout);
      // EPIPE on Linux means the peer's RST already arrived: the same loss as a reset.
      if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
        return fail(outcome::connection_reset);
      return fail(outcome::other);
    }
    if (have_ > 0) return parse();
    read();
  });
}

void connection::reset_parser() {
  parser_.emplace();
  parser_->eager(true);
  // No limit: the body is discarded as it streams. (Not boost::none: Beast 1.74 compares
  // the Content-Length against the optional and an empty optional rejects every body.)
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  if (p_.head) parser_->skip(true);
}

void connection::read() {
  sock_.async_read_some(asio::buffer(buf_.get() + have_, buffer_size - have_),
                        [this](const error_code& ec, std::size_t n) {
                          if (ec) return on_read_error(ec);
                          have_ += n;
                          parse();
                        });
}

void connection::parse() {
  for (;;) {
    error_code ec;
    const std::size_t used = parser_->put(asio::buffer(buf_.get(), have_), ec);
    if (used > 0) {
      std::memmove(buf_.get(), buf_.get() + used, have_ - used);
      have_ -= used;
    }
    if (ec == http::error::need_more) {
      if (have_ == buffer_size) return fail(outcome::other);  // header beyond the buffer
      return read();
    }
    if (ec) return fail(outcome::other);
    if (parser_->is_done()) {
      const int status = parser_->status;
      if (status >= 100 && status < 200 && status != 101) {
        // An interim response (100 Continue, 103 Early Hints): the final one follows.
        reset_parser();
        if (have_ == 0) return read();
        continue;
      }
      return complete(status, parser_->keep_alive());
    }
    if (have_ == 0) return read();
  }
}

void connection::on_read_error(const error_code& ec) {
  if (timed_out_) return fail(outcome::timeout);
  if (ec == asio::error::eof) {
    // A body delimited by the end of the connection (no Content-Length, not chunked) is
    // complete only now (RFC 9112 6.3 rule 8).
    if (parser_ && parser_->got_some()) {
      error_code pe;
      parser_->put_eof(pe);
      if (!pe && parser_->is_done()) return complete(parser_->status, false);
    }
    return fail(outcome::closed_before_response);
  }
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
    return fail(outcome::connection_reset);
  return fail(outcome::other);
}

void connection::check_timeout(clock::time_point now) {
  if (in_flight_ && !timed_out_ && now >= deadline_) {
    timed_out_ = true;
    // Closing cancels the pending connect/write/read; its handler sees timed_out_.
    error_code ignored;
    sock_.close(ignored);
  }
}

void connection::complete(int status, bool keep_alive) {
  const auto now = clock::now();
  const outcome k = status >= 200 && status < 400 ? outcome::ok
                    : status >= 400 && status < 600 ? outcome::http_error
                                                    : outcome::other;
  in_flight_ = false;
  record_request(w_.stats, p_, intended_, k, status, now);
  // `Connection: close` (or HTTP/1.0, or a body ended by EOF) means this connection is done:
  // the next request opens a new one. That is the protocol working, not a failure.
  if (!keep_alive || p_.o.close || !sock_.is_open()) retire(reconnect_cause::connection_close);
  after_request(k != outcome::ok);
}

void connection::fail(outcome k) {
  in_flight_ = false;
  record_request(w_.stats, p_, intended_, k, 0, clock::now());
  retire(reconnect_cause::after_failure);
  after_request(true);
}

} // namespace

std::unique_ptr<paced_client> make_http1_client(worker& w, unsigned global_index) {
  return std::make_unique<connection>(w, global_index);
}

std::string build_http1_request(const bench_options& o) {
  std::string r = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: graceful-bench\r\nAccept: */*\r\n",
                              o.method, o.where.path, o.where.host_header);
  for (const auto& h : o.headers) r += h + "\r\n";
  if (o.close) r += "Connection: close\r\n";
  if (o.body_size > 0 || o.method == "POST" || o.method == "PUT" || o.method == "PATCH")
    r += fmt::format("Content-Type: application/octet-stream\r\nContent-Length: {}\r\n", o.body_size);
  r += "\r\n";
  r.append(o.body_size, 'x');
  return r;
}

} // namespace graceful::bench
