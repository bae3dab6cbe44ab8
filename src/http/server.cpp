// The server: one Asio io_context per thread ("loop"), each accepting on its own dup of every
// listener and owning the connections it accepted, so a request never crosses threads and
// the request path takes no lock. Cross-thread calls (shutdown, close, describe, adopt) are
// posted to each loop.
#include <graceful/http/server.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <graceful/http/context.hpp>
#include <graceful/http/request_parser.hpp>

namespace graceful::http {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace detail {

class connection;

/// A growable byte buffer with a read and a write index; memory is kept between requests.
class byte_buffer {
public:
  const char* data() const noexcept { return p_.get() + b_; }
  std::size_t size() const noexcept { return e_ - b_; }
  bool empty() const noexcept { return b_ == e_; }
  void consume(std::size_t n) noexcept {
    b_ += n;
    if (b_ == e_) b_ = e_ = 0;
  }
  void clear() noexcept { b_ = e_ = 0; }
  asio::mutable_buffer prepare(std::size_t min) {
    if (cap_ - e_ < min) {
      if (b_ > 0) {
        std::memmove(p_.get(), p_.get() + b_, e_ - b_);
        e_ -= b_;
        b_ = 0;
      }
      if (cap_ - e_ < min) {
        std::size_t ncap = std::max(cap_ * 2, e_ + min);
        auto np = std::make_unique<char[]>(ncap);
        if (e_) std::memcpy(np.get(), p_.get(), e_);
        p_ = std::move(np);
        cap_ = ncap;
      }
    }
    return {p_.get() + e_, cap_ - e_};
  }
  void commit(std::size_t n) noexcept { e_ += n; }

private:
  std::unique_ptr<char[]> p_;
  std::size_t cap_ = 0, b_ = 0, e_ = 0;
};

struct loop;

} // namespace detail

struct server::impl {
  options opts;
  http::router routes;
  std::vector<std::unique_ptr<detail::loop>> loops;
  std::atomic<bool> routes_frozen{false};
  /// 0 running, 1 shutting down, 2 closed.
  std::atomic<int> state{0};
  /// Open connections plus running accept loops: shutdown is done when it reaches 0.
  std::atomic<std::int64_t> live{0};
  /// Open connections only (max_connections).
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> last_shutdown_ns{0};
  std::mutex m;
  std::condition_variable cv;

  void retain() noexcept { live.fetch_add(1, std::memory_order_relaxed); }
  void release() {
    // The last one out wakes shutdown(): event-driven, no polling.
    if (live.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lk(m);
      cv.notify_all();
    }
  }
  void notify_state() {
    std::lock_guard lk(m);
    cv.notify_all();
  }
};

namespace detail {

/// A counter written by one loop thread and read by others (metrics): no locked instruction.
inline void bump(std::atomic<std::uint64_t>& c, std::int64_t d = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(d), std::memory_order_relaxed);
}

struct listener {
  tcp::acceptor acceptor;
  asio::steady_timer pause;  // EMFILE back-off and max_connections pause
  explicit listener(asio::io_context& ctx) : acceptor(ctx), pause(ctx) {}
};

struct loop {
  server::impl& srv;
  unsigned index;
  std::unique_ptr<asio::io_context> ctx = std::make_unique<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{ctx->get_executor()};
  std::thread thread;
  std::vector<std::unique_ptr<listener>> listeners;
  std::vector<connection*> conns;  // only touched on this loop's thread
  std::stop_source stop;
  std::stop_token stop_token = stop.get_token();
  bool draining = false;  // shutdown or close began (loop thread only)
  bool closing = false;   // close began (loop thread only)
  std::array<std::atomic<std::uint64_t>, 600> by_status{};
  std::atomic<std::uint64_t> in_flight{0};
  std::atomic<std::uint64_t> accepted{0};
  std::time_t date_sec = 0;
  char date_buf[64] = {};
  std::size_t date_len = 0;
  clock_type::time_point last_accept_log{};

  loop(server::impl& s, unsigned i) : srv(s), index(i) {}

  /// The Date header value, formatted once per second (RFC 9110 5.6.7 IMF-fixdate).
  std::string_view date() {
    std::time_t t = std::time(nullptr);
    if (t != date_sec) {
      date_sec = t;
      std::tm tm{};
      gmtime_r(&t, &tm);
      date_len = std::strftime(date_buf, sizeof date_buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    }
    return {date_buf, date_len};
  }
  void count_status(int status) {
    if (status >= 100 && status < 600) bump(by_status[static_cast<std::size_t>(status)]);
  }
};

std::string_view reason_phrase(int s) noexcept {
  switch (s) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// One client connection. Lives on its loop's thread; its coroutine serves requests one
/// after another (pipelined responses are batched into one write).
class connection : public std::enable_shared_from_this<connection> {
public:
  std::size_t index = 0;  // position in loop::conns

  connection(loop& l, tcp::socket s)
      : loop_(l), opts_(l.srv.opts), socket_(std::move(s)), timer_(*l.ctx), sleep_timer_(*l.ctx),
        parser_(parse_limits{l.srv.opts.max_header_bytes, l.srv.opts.max_body_bytes}),
        accepted_at_(clock_type::now()) {}

  static asio::awaitable<void> run(std::shared_ptr<connection> self) {
    try {
      co_await self->serve();
    } catch (const std::exception& e) {
      spdlog::error("http: connection failed: {}", e.what());
    }
    self->finish();
  }

  /// Shutdown began (loop thread): give a connection without a complete request the grace,
  /// wake handlers sleeping in sleep_or_stop.
  void begin_shutdown() {
    if (phase_ == phase::idle || phase_ == phase::header) {
      auto g = clock_type::now() + opts_.shutdown_idle_grace;
      if (g < deadline_) set_deadline(g);
    }
    if (sleeping_) sleep_timer_.cancel();
  }

  /// close() (loop thread): cut now.
  void force_close() {
    closed_ = true;
    error_code ec;
    socket_.close(ec);
    timer_.cancel();
    sleep_timer_.cancel();
  }

  void describe(std::string& out, clock_type::time_point now) const {
    using std::chrono::duration_cast;
    using ms = std::chrono::milliseconds;
    error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    out += "  conn ";
    out += ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
    out += " state=";
    out += phase_name();
    out += " age=" + std::to_string(duration_cast<ms>(now - accepted_at_).count()) + "ms";
    out += " requests=" + std::to_string(requests_);
    if (in_flight_) {
      out += " request=\"";
      out += req_.method();
      out += ' ';
      out += req_.path().substr(0, 200);
      out += "\" request_age=" + std::to_string(duration_cast<ms>(now - req_.received_).count()) + "ms";
    }
    out += '\n';
  }

  asio::awaitable<bool> write_chunk(std::string_view data) {
    if (closed_ || stream_failed_) co_return false;
    if (!streaming_) {
      streaming_ = true;
      chunked_ = req_.version_ == 11;
      // An HTTP/1.0 client has no chunked coding: the end of the body is our close.
      stream_close_ = !chunked_ || !req_.keep_alive_ || loop_.draining || wants_close();
      write_head(res_.status, 0, chunked_, true, stream_close_);
    }
    if (!data.empty() && !head_request_) {
      if (chunked_) {
        char buf[20];
        auto r = std::to_chars(buf, buf + sizeof buf, data.size(), 16);
        out_.append(buf, r.ptr);
        out_ += "\r\n";
        out_.append(data);
        out_ += "\r\n";
      } else {
        out_.append(data);
      }
    }
    auto saved = deadline_;
    bool ok = co_await flush();
    set_deadline(saved);
    if (!ok) stream_failed_ = true;
    co_return ok;
  }

  asio::awaitable<bool> sleep_or_stop(std::chrono::milliseconds d) {
    if (loop_.draining || closed_) co_return false;
    sleep_timer_.expires_after(d);
    sleeping_ = true;
    error_code ec;
    co_await sleep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    sleeping_ = false;
    co_return !ec && !loop_.draining && !closed_;
  }

private:
  enum class phase : std::uint8_t { idle, header, body, handling, lingering, done };

  const char* phase_name() const noexcept {
    switch (phase_) {
      case phase::idle: return requests_ ? "idle" : "new";
      case phase::header: return "reading-header";
      case phase::body: return "reading-body";
      case phase::handling: return "handling";
      case phase::lingering: return "lingering-close";
      case phase::done: return "closed";
    }
    return "?";
  }

  // ---- deadlines: one timer per connection, re-armed lazily ----
  // Setting a later deadline does not touch the timer (it fires early and re-arms itself), so
  // the keep-alive hot path costs a clock read instead of a timer cancel + heap update.
  void set_deadline(clock_type::time_point t) {
    deadline_ = t;
    timed_out_ = false;
    if (t == clock_type::time_point::max()) return;
    if (!timer_armed_ || t < timer_at_) arm_timer(t);
  }
  void arm_timer(clock_type::time_point t) {
    timer_armed_ = true;
    timer_at_ = t;
    timer_.expires_at(t);
    timer_.async_wait([self = shared_from_this(), gen = ++timer_gen_](const error_code&) {
      if (gen != self->timer_gen_) return;  // superseded by a newer arm
      self->timer_armed_ = false;
      self->on_timer();
    });
  }
  void on_timer() {
    if (closed_ || phase_ == phase::done || deadline_ == clock_type::time_point::max()) return;
    if (clock_type::now() < deadline_) {
      arm_timer(deadline_);
      return;
    }
    timed_out_ = true;
    error_code ec;
    socket_.cancel(ec);  // the pending read or write completes with operation_aborted
  }

  std::chrono::milliseconds header_or_grace(std::chrono::milliseconds normal) const {
    return loop_.draining ? std::min(normal, opts_.shutdown_idle_grace) : normal;
  }

  // ---- I/O ----
  asio::awaitable<std::size_t> read_some() {
    eof_ = false;
    if (closed_) co_return 0;
    if (timed_out_ || clock_type::now() >= deadline_) {
      timed_out_ = true;
      co_return 0;
    }
    auto buf = in_.prepare(4096);
    error_code ec;
    std::size_t n = co_await socket_.async_read_some(buf, asio::redirect_error(asio::use_awaitable, ec));
    if (n > 0) {
      in_.commit(n);
      co_return n;
    }
    if (ec == asio::error::eof) eof_ = true;
    co_return 0;
  }

  asio::awaitable<bool> flush() {
    if (out_.empty()) co_return !closed_;
    if (closed_) co_return false;
    set_deadline(clock_type::now() + opts_.write_timeout);
    error_code ec;
    co_await asio::async_write(socket_, asio::buffer(out_), asio::redirect_error(asio::use_awaitable, ec));
    out_.clear();
    if (out_.capacity() > 256 * 1024) out_.shrink_to_fit();
    co_return !ec && !closed_;
  }

  bool bytes_waiting() {
    error_code ec;
    return socket_.available(ec) > 0 && !ec;
  }

  /// FIN first, then read and discard until the client closes (or time/bytes run out), so the
  /// kernel never answers unread input with a RST that would destroy our last response.
  asio::awaitable<void> linger_close() {
    if (closed_) co_return;
    phase_ = phase::lingering;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (!ec) {
      set_deadline(clock_type::now() + opts_.linger_timeout);
      std::size_t total = 0;
      for (;;) {
        in_.clear();
        auto n = co_await read_some();
        if (n == 0) break;
        total += n;
        if (total >= opts_.linger_max_bytes) break;
      }
    }
    socket_.close(ec);
  }

  void finish() {
    phase_ = phase::done;
    error_code ec;
    socket_.close(ec);
    timer_.cancel();
    sleep_timer_.cancel();
    if (in_flight_) {
      in_flight_ = false;
      bump(loop_.in_flight, -1);
    }
    auto& v = loop_.conns;
    if (index < v.size() && v[index] == this) {
      v[index] = v.back();
      v[index]->index = index;
      v.pop_back();
    }
    loop_.srv.connections.fetch_sub(1, std::memory_order_relaxed);
    loop_.srv.release();
  }

  // ---- responses ----
  bool wants_close() const noexcept {
    for (auto& [k, v] : res_.headers_)
      if (iequals(k, "connection") && iequals(v, "close")) return true;
    return false;
  }

  static bool status_has_body(int s) noexcept { return !(s < 200 || s == 204 || s == 304); }

  void write_head(int status, std::size_t length, bool chunked, bool no_length, bool close) {
    auto& o = out_;
    o += "HTTP/1.1 ";
    append_number(o, static_cast<std::uint64_t>(status));
    o += ' ';
    o += reason_phrase(status);
    o += "\r\n";
    if (!opts_.server_name.empty()) {
      o += "Server: ";
      o += opts_.server_name;
      o += "\r\n";
    }
    o += "Date: ";
    o += loop_.date();
    o += "\r\n";
    if (status_has_body(status)) {
      if (!res_.content_type.empty()) {
        o += "Content-Type: ";
        o += res_.content_type;
        o += "\r\n";
      }
      if (chunked) {
        o += "Transfer-Encoding: chunked\r\n";
      } else if (!no_length) {
        o += "Content-Length: ";
        append_number(o, length);
        o += "\r\n";
      }
    }
    for (auto& [k, v] : res_.headers_) {
      if (iequals(k, "content-length") || iequals(k, "transfer-encoding") || iequals(k, "connection")) continue;
      o += k;
      o += ": ";
      o += v;
      o += "\r\n";
    }
    if (close) o += "Connection: close\r\n";
    else if (req_.version_ == 10) o += "Connection: keep-alive\r\n";
    o += "\r\n";
  }

  void write_response(bool close) {
    if (res_.status < 100 || res_.status > 599) res_.status = 500;
    bool body = status_has_body(res_.status);
    write_head(res_.status, res_.body.size(), false, false, close);
    if (body && !head_request_) out_ += res_.body;
  }

  void reset_response() {
    res_.status = 200;
    res_.body.clear();
    if (res_.body.capacity() > 256 * 1024) res_.body.shrink_to_fit();
    if (res_.content_type != response::default_content_type) res_.content_type = response::default_content_type;
    res_.headers_.clear();
    streaming_ = chunked_ = stream_close_ = stream_failed_ = head_request_ = false;
  }

  void fail_response(int status, std::string_view reason) {
    reset_response();
    res_.status = status;
    res_.body.assign(reason);
    res_.body += '\n';
  }

  asio::awaitable<void> reply_error() {
    fail_response(parser_.error_status(), parser_.error_reason());
    write_response(true);
    loop_.count_status(res_.status);
    bool sent = co_await flush();
    if (sent) co_await linger_close();
  }

  // ---- the request loop ----
  asio::awaitable<void> serve() {
    for (;;) {
      parser_.start(req_);
      reset_response();
      // Wait for the next request. A connection with no complete request is "idle" (or
      // "new"): during shutdown it only gets the grace. Bytes that arrived make it active.
      phase_ = in_.empty() ? phase::idle : phase::header;
      auto now = clock_type::now();
      if (phase_ == phase::idle)
        set_deadline(now + header_or_grace(requests_ ? opts_.idle_timeout : opts_.header_read_timeout));
      else
        set_deadline(now + header_or_grace(opts_.header_read_timeout));
      for (;;) {
        if (!in_.empty()) {
          if (phase_ == phase::idle) {
            phase_ = phase::header;
            if (requests_) set_deadline(clock_type::now() + header_or_grace(opts_.header_read_timeout));
          }
          auto n = parser_.feed(in_.data(), in_.size());
          in_.consume(n);
          auto st = parser_.current();
          if (st == request_parser::state::error) {
            co_await reply_error();
            co_return;
          }
          if (st != request_parser::state::need_more) break;
        }
        if (!out_.empty()) {
          // Responses to pipelined requests went into out_ together; send them before waiting.
          auto saved = deadline_;
          bool sent = co_await flush();
          if (!sent) co_return;
          set_deadline(saved);
        }
        std::size_t got = co_await read_some();
        if (got == 0) {
          // Grace over during shutdown, yet a request raced in: it has arrived, so answer it
          // (this is the golang/go#65802 race, closed).
          if (timed_out_ && loop_.draining && !closed_ && bytes_waiting()) {
            set_deadline(clock_type::now() + opts_.header_read_timeout);
            continue;
          }
          if (eof_ || closed_) co_return;  // the client closed first: nothing to protect
          co_await linger_close();
          co_return;
        }
      }

      // ---- a request header is in ----
      req_.received_ = clock_type::now();
      req_.stop_ = &loop_.stop_token;
      in_flight_ = true;
      bump(loop_.in_flight);
      if (parser_.current() == request_parser::state::header_done) {
        phase_ = phase::body;
        if (parser_.expect_continue() && in_.empty()) {
          // RFC 9110 10.1.1: the client waits for this before sending the body.
          out_ += "HTTP/1.1 100 Continue\r\n\r\n";
          bool sent = co_await flush();
          if (!sent) co_return;
        }
        set_deadline(clock_type::now() + opts_.body_read_timeout);
        for (;;) {
          if (!in_.empty()) {
            auto n = parser_.feed(in_.data(), in_.size());
            in_.consume(n);
            if (parser_.current() == request_parser::state::error) {
              co_await reply_error();
              co_return;
            }
            if (parser_.current() == request_parser::state::complete) break;
          }
          // Whatever is left in in_ is an incomplete piece (e.g. a chunk header): read more.
          std::size_t got = co_await read_some();
          if (got == 0) {
            if (eof_ && parser_.feed_eof() == request_parser::state::complete) break;
            if (timed_out_) {
              fail_response(408, "request body not received in time");
              write_response(true);
              loop_.count_status(408);
              bool sent = co_await flush();
              if (sent) co_await linger_close();
            }
            co_return;
          }
        }
      }

      // ---- handle ----
      phase_ = phase::handling;
      head_request_ = req_.method() == "HEAD";
      bool path_known = false;
      const handler* h = loop_.srv.routes.find(req_.method(), req_.path(), path_known);
      if (!h) {
        fail_response(path_known ? 405 : 404, path_known ? "method not allowed" : "not found");
        if (path_known) res_.add_header("Allow", loop_.srv.routes.allowed(req_.path()));
      } else if (auto* sh = std::get_if<sync_handler>(h)) {
        context ctx(req_, res_, *this);
        try {
          (*sh)(ctx);
        } catch (const std::exception& e) {
          spdlog::error("http: handler for {} {} threw: {}", req_.method(), req_.path(), e.what());
          fail_response(500, "internal server error");
        }
      } else {
        if (!out_.empty()) {
          bool sent = co_await flush();
          if (!sent) co_return;
        }
        set_deadline(clock_type::time_point::max());
        context ctx(req_, res_, *this);
        bool threw = false;
        try {
          co_await std::get<async_handler>(*h)(ctx);
        } catch (const std::exception& e) {
          spdlog::error("http: handler for {} {} threw: {}", req_.method(), req_.path(), e.what());
          threw = true;
        }
        if (threw) {
          // Mid-stream there is no way to send a 500: cut the connection so the client sees
          // a truncated (not a silently short) response.
          if (streaming_) co_return;
          fail_response(500, "internal server error");
        }
      }
      if (closed_) co_return;

      // ---- respond ----
      bool close;
      if (streaming_) {
        if (stream_failed_) co_return;
        if (chunked_) out_ += "0\r\n\r\n";
        close = stream_close_;
      } else {
        // Shutdown began: this answer is the connection's last, unless the client already
        // pipelined more requests: those have arrived, so they are answered too and the
        // last of them carries the close.
        close = !req_.keep_alive_ || wants_close() || (loop_.draining && in_.empty() && !bytes_waiting());
        write_response(close);
      }
      loop_.count_status(res_.status);
      in_flight_ = false;
      bump(loop_.in_flight, -1);
      ++requests_;
      if (close) {
        bool sent = co_await flush();
        if (sent) co_await linger_close();
        co_return;
      }
      if (out_.size() >= 64 * 1024) {
        bool sent = co_await flush();
        if (!sent) co_return;
      }
    }
  }

  loop& loop_;
  const options& opts_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::steady_timer sleep_timer_;
  byte_buffer in_;
  std::string out_;
  request_parser parser_;
  request req_;
  response res_;
  clock_type::time_point accepted_at_;
  clock_type::time_point deadline_ = clock_type::time_point::max();
  clock_type::time_point timer_at_{};
  std::uint64_t timer_gen_ = 0;
  std::uint64_t requests_ = 0;
  phase phase_ = phase::idle;
  bool timer_armed_ = false;
  bool timed_out_ = false;
  bool eof_ = false;
  bool closed_ = false;
  bool sleeping_ = false;
  bool in_flight_ = false;
  bool streaming_ = false;
  bool chunked_ = false;
  bool stream_close_ = false;
  bool stream_failed_ = false;
  bool head_request_ = false;
};

void start_connection(loop& l, tcp::socket s) {
  error_code ec;
  // Responses are written whole; Nagle would only delay stream chunks and 100-continue.
  s.set_option(tcp::no_delay(true), ec);
  bump(l.accepted);
  l.srv.retain();
  l.srv.connections.fetch_add(1, std::memory_order_relaxed);
  auto c = std::make_shared<connection>(l, std::move(s));
  c->index = l.conns.size();
  l.conns.push_back(c.get());
  asio::co_spawn(*l.ctx, connection::run(std::move(c)), asio::detached);
}

bool is_resource_exhaustion(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory;
}

asio::awaitable<void> accept_loop(loop& l, listener& li) {
  using namespace std::chrono_literals;
  std::chrono::milliseconds backoff{0};
  for (;;) {
    if (!li.acceptor.is_open() || l.draining) break;
    if (static_cast<std::size_t>(l.srv.connections.load(std::memory_order_relaxed)) >= l.srv.opts.max_connections) {
      // Full: leave clients in the kernel backlog rather than refusing them.
      li.pause.expires_after(10ms);
      error_code ec;
      co_await li.pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    error_code ec;
    tcp::socket s = co_await li.acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !li.acceptor.is_open() || l.draining) break;
      if (is_resource_exhaustion(ec)) {
        // EMFILE/ENFILE: the connection stays queued and epoll keeps reporting the listener
        // readable, so retrying at once would spin. Back off 5 ms doubling to 1 s, as Go does.
        backoff = backoff.count() == 0 ? 5ms : std::min<std::chrono::milliseconds>(backoff * 2, 1s);
        auto now = clock_type::now();
        if (now - l.last_accept_log >= 1s) {
          l.last_accept_log = now;
          spdlog::warn("http: accept: {}; retrying in {} ms", ec.message(), backoff.count());
        }
        li.pause.expires_after(backoff);
        error_code ig;
        co_await li.pause.async_wait(asio::redirect_error(asio::use_awaitable, ig));
      }
      continue;  // ECONNABORTED and the like concern one client only
    }
    backoff = 0ms;
    start_connection(l, std::move(s));
  }
  l.srv.release();
}

/// Runs `f(loop&)` on every loop's thread and waits for all, at most until `d`.
/// Returns false when some loop did not get to it in time.
template <class F> bool on_each_loop(server::impl& srv, graceful::deadline d, F f) {
  struct shared {
    std::mutex m;
    std::condition_variable cv;
    std::size_t left;
  };
  auto st = std::make_shared<shared>();
  st->left = srv.loops.size();
  for (auto& lp : srv.loops) {
    asio::post(*lp->ctx, [st, f, l = lp.get()]() mutable {
      f(*l);
      std::lock_guard lk(st->m);
      if (--st->left == 0) st->cv.notify_all();
    });
  }
  std::unique_lock lk(st->m);
  if (d.is_never()) {
    st->cv.wait(lk, [&] { return st->left == 0; });
    return true;
  }
  return st->cv.wait_until(lk, d.when(), [&] { return st->left == 0; });
}

void begin_shutdown(loop& l) {
  if (l.draining) return;
  l.draining = true;
  l.stop.request_stop();
  error_code ec;
  for (auto& li : l.listeners) {
    li->acceptor.close(ec);
    li->pause.cancel();
  }
  auto conns = l.conns;  // begin_shutdown does not unlink, but stay safe against it
  for (auto* c : conns) c->begin_shutdown();
}

void begin_close(loop& l) {
  begin_shutdown(l);
  if (l.closing) return;
  l.closing = true;
  auto conns = l.conns;
  for (auto* c : conns) c->force_close();
}

} // namespace detail

// ---- context ----

asio::awaitable<bool> context::write_chunk(std::string_view data) { return conn_->write_chunk(data); }
asio::awaitable<bool> context::sleep_or_stop(std::chrono::milliseconds d) { return conn_->sleep_or_stop(d); }

// ---- server ----

server::server(http::router routes, options opts) : impl_(std::make_shared<impl>()) {
  if (opts.max_header_bytes < 64) throw std::invalid_argument("http::options::max_header_bytes must be >= 64");
  if (opts.max_connections == 0) throw std::invalid_argument("http::options::max_connections must be > 0");
  if (opts.threads == 0) opts.threads = std::max(1u, std::thread::hardware_concurrency());
  if (opts.threads > 1024) throw std::invalid_argument("http::options::threads must be <= 1024");
  impl_->opts = std::move(opts);
  impl_->routes = std::move(routes);
  for (unsigned i = 0; i < impl_->opts.threads; ++i) {
    auto l = std::make_unique<detail::loop>(*impl_, i);
    impl_->loops.push_back(std::move(l));
  }
  for (auto& l : impl_->loops) {
    l->thread = std::thread([lp = l.get()] {
      auto name = "http-" + std::to_string(lp->index);
      pthread_setname_np(pthread_self(), name.c_str());
      lp->ctx->run();
    });
  }
}

server::~server() {
  close();
  for (auto& l : impl_->loops) {
    l->work.reset();
    l->ctx->stop();
  }
  for (auto& l : impl_->loops)
    if (l->thread.joinable()) l->thread.join();
  for (auto& l : impl_->loops) {
    // Destroy sockets before their io_context; pending coroutines die with the context.
    l->listeners.clear();
    l->ctx.reset();
  }
}

http::router& server::routes() {
  if (impl_->routes_frozen.load()) throw std::logic_error("http::server::routes(): routes are fixed once serving");
  return impl_->routes;
}

result<void> server::adopt(int fd) {
  if (impl_->state.load() != 0) {
    ::close(fd);
    return errc::server_closed;
  }
  int accepting = 0, type = 0, domain = 0;
  socklen_t len = sizeof(int);
  bool ok = ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting == 1;
  len = sizeof(int);
  ok = ok && ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
  len = sizeof(int);
  ok = ok && ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && (domain == AF_INET || domain == AF_INET6);
  if (!ok) {
    if (fd >= 0) ::close(fd);
    return errc::not_a_listener;
  }
  impl_->routes_frozen = true;
  // Every loop accepts on its own fd (dup) of the same socket: the kernel hands each
  // connection to one of them, and the connection stays on that loop.
  std::vector<int> fds{fd};
  for (std::size_t i = 1; i < impl_->loops.size(); ++i) {
    int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0) {
      std::error_code e(errno, std::system_category());
      for (int x : fds) ::close(x);
      return e;
    }
    fds.push_back(d);
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  auto proto = domain == AF_INET ? tcp::v4() : tcp::v6();
  // Shared with the posted work: it may outlive this call if a loop is stuck in a handler.
  struct shared {
    std::mutex m;
    std::error_code first_error;
    std::vector<int> fds;
  };
  auto st = std::make_shared<shared>();
  st->fds = std::move(fds);
  auto all = detail::on_each_loop(*impl_, graceful::deadline::after(std::chrono::seconds(10)), [st, proto](detail::loop& l) {
    int my = st->fds[l.index];
    std::error_code e;
    if (l.draining) {
      ::close(my);
      e = errc::server_closed;
    } else {
      auto li = std::make_unique<detail::listener>(*l.ctx);
      error_code ec;
      li->acceptor.assign(proto, my, ec);
      if (ec) {
        ::close(my);
        e = std::error_code(ec.value(), std::system_category());
      } else {
        l.srv.retain();
        auto& ref = *li;
        l.listeners.push_back(std::move(li));
        asio::co_spawn(*l.ctx, detail::accept_loop(l, ref), asio::detached);
      }
    }
    if (e) {
      std::lock_guard lk(st->m);
      if (!st->first_error) st->first_error = e;
    }
  });
  if (!all) return std::make_error_code(std::errc::timed_out);
  std::lock_guard lk(st->m);
  if (st->first_error) return st->first_error;
  return graceful::ok();
}

result<std::uint16_t> server::listen(std::string_view address) {
  if (impl_->state.load() != 0) return errc::server_closed;
  auto fd = open_listener(address, impl_->opts.backlog);
  if (!fd) return fd.error();
  auto port = local_port(fd.value());
  if (!port) {
    ::close(fd.value());
    return port.error();
  }
  if (auto r = adopt(fd.value()); !r) return r.error();
  return port.value();
}

result<void> server::serve(int listen_fd) {
  if (auto r = adopt(listen_fd); !r) return r;
  std::unique_lock lk(impl_->m);
  impl_->cv.wait(lk, [&] { return impl_->state.load() != 0; });
  return errc::server_closed;
}

result<void> server::listen_and_serve(std::string_view address) {
  if (auto r = listen(address); !r) return r.error();
  std::unique_lock lk(impl_->m);
  impl_->cv.wait(lk, [&] { return impl_->state.load() != 0; });
  return errc::server_closed;
}

result<void> server::shutdown(graceful::deadline d) {
  auto t0 = clock_type::now();
  int expected = 0;
  bool first = impl_->state.compare_exchange_strong(expected, 1);
  if (first) impl_->notify_state();
  // Posted, not waited for: a loop busy in a handler gets to it when the handler returns.
  for (auto& l : impl_->loops) asio::post(*l->ctx, [lp = l.get()] { detail::begin_shutdown(*lp); });
  std::unique_lock lk(impl_->m);
  auto none_left = [&] { return impl_->live.load(std::memory_order_acquire) == 0; };
  bool done = true;
  if (d.is_never()) impl_->cv.wait(lk, none_left);
  else done = impl_->cv.wait_until(lk, d.when(), none_left);
  if (!done) return errc::shutdown_timeout;
  if (first) impl_->last_shutdown_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
  return graceful::ok();
}

void server::close() {
  if (impl_->state.exchange(2) != 2) impl_->notify_state();
  detail::on_each_loop(*impl_, graceful::deadline::after(std::chrono::seconds(1)), [](detail::loop& l) { detail::begin_close(l); });
}

server_stats server::stats() const {
  server_stats s;
  std::array<std::uint64_t, 600> codes{};
  for (auto& l : impl_->loops) {
    s.accepted_connections += l->accepted.load(std::memory_order_relaxed);
    s.in_flight_requests += l->in_flight.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] += l->by_status[i].load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < codes.size(); ++i)
    if (codes[i]) s.responses_by_status.emplace_back(static_cast<int>(i), codes[i]);
  auto c = impl_->connections.load(std::memory_order_relaxed);
  s.open_connections = c > 0 ? static_cast<std::uint64_t>(c) : 0;
  s.shutting_down = impl_->state.load() != 0;
  s.last_shutdown_duration = std::chrono::nanoseconds(impl_->last_shutdown_ns.load());
  return s;
}

std::string server::describe(graceful::deadline d) const {
  struct shared {
    std::mutex m;
    std::vector<std::string> parts;
  };
  auto st = std::make_shared<shared>();
  st->parts.resize(impl_->loops.size());
  auto all = detail::on_each_loop(*impl_, d, [st](detail::loop& l) {
    std::string out;
    auto now = clock_type::now();
    out += "loop " + std::to_string(l.index) + ": " + std::to_string(l.conns.size()) + " connections" +
           (l.draining ? " (draining)" : "") + "\n";
    for (auto* c : l.conns) c->describe(out, now);
    std::lock_guard lk(st->m);
    st->parts[l.index] = std::move(out);
  });
  std::lock_guard lk(st->m);
  std::string out;
  for (std::size_t i = 0; i < st->parts.size(); ++i) {
    if (st->parts[i].empty()) out += "loop " + std::to_string(i) + ": busy (did not answer in time)\n";
    else out += st->parts[i];
  }
  (void)all;
  return out;
}

} // namespace graceful::http
