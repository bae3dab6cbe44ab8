#include "http/h2_connection.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nghttp2/nghttp2.h>

#include "http/dispatch.hpp"
#include "http/loop.hpp"
#include "http/message_access.hpp"
#include "http/server_state.hpp"

namespace graceful::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool contains_token(std::string_view list, std::string_view token) {
  // A comma-separated list (Connection, Upgrade), compared case-insensitively.
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.size() != token.size()) continue;
    bool eq = true;
    for (std::size_t i = 0; i < item.size() && eq; ++i) eq = lower(item[i]) == lower(token[i]);
    if (eq) return true;
  }
  return false;
}

h2_settings settings_from(const options& o, const std::string& peer) {
  h2_settings s;
  s.max_concurrent_streams = o.http2_max_concurrent_streams;
  s.stream_window = o.http2_stream_window;
  s.max_header_list_size = o.max_header_bytes;
  s.max_body_bytes = o.max_body_bytes;
  s.server_name = o.server_name;
  s.peer = peer;
  return s;
}

std::string peer_of(const tcp::socket& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

} // namespace

bool looks_like_h2_preface(std::string_view data, bool& complete) noexcept {
  auto p = h2_preface();
  auto n = std::min(data.size(), p.size());
  complete = data.size() >= p.size();
  return data.substr(0, n) == p.substr(0, n);
}

bool wants_h2c_upgrade(const request& req, std::string& settings) {
  auto up = req.header("upgrade");
  auto hs = req.header("http2-settings");
  if (!up || !hs || !contains_token(*up, "h2c")) return false;
  // RFC 7540 3.2.1: HTTP2-Settings is a connection-specific field: Connection must name it.
  auto conn = req.header("connection");
  if (!conn || !contains_token(*conn, "upgrade") || !contains_token(*conn, "http2-settings")) return false;
  return base64url_decode(*hs, settings);
}

// ---- the stream sink: what a handler's context talks to ----

class h2_connection::sink final : public stream_sink {
public:
  sink(h2_connection& c, h2_stream& st) : c_(c), st_(st), wake_(*c.loop_.ctx) { c_.sinks_[st.id] = this; }
  ~sink() { c_.sinks_.erase(st_.id); }
  sink(const sink&) = delete;
  sink& operator=(const sink&) = delete;

  asio::awaitable<bool> write_chunk(std::string_view data) override {
    if (gone()) co_return false;
    if (!streaming_) {
      streaming_ = true;
      if (!c_.session_.start_streaming(st_, c_.loop_.date())) co_return false;
    }
    if (!c_.session_.write(st_, data)) co_return false;
    c_.kick();
    // Flow control: the client has not granted window for what is buffered; wait for it
    // (the write timeout resets a stream that stays stalled, which wakes us too).
    while (c_.session_.write_blocked(st_) && !gone()) {
      waiting_ = true;
      wake_.expires_at(clock_type::time_point::max());
      error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      waiting_ = false;
    }
    co_return !gone();
  }

  asio::awaitable<bool> sleep_or_stop(std::chrono::milliseconds d) override {
    if (c_.loop_.draining || gone()) co_return false;
    sleeping_ = true;
    wake_.expires_after(d);
    error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    sleeping_ = false;
    co_return !ec && !c_.loop_.draining && !gone();
  }

  asio::awaitable<bool> before_async_handler() override {
    c_.kick();
    co_return !gone();
  }

  bool streaming() const noexcept override { return streaming_; }

  /// Flow control moved, or the stream closed: a waiting write_chunk re-checks.
  void writable() {
    if (waiting_ || (sleeping_ && st_.closed)) wake_.cancel();
  }
  /// Shutdown or close: a sleeping handler wakes (sleep_or_stop returns false).
  void stop() { if (sleeping_ || waiting_) wake_.cancel(); }

private:
  bool gone() const noexcept { return st_.closed || c_.closed_; }

  h2_connection& c_;
  h2_stream& st_;
  asio::steady_timer wake_;
  bool streaming_ = false;
  bool waiting_ = false;
  bool sleeping_ = false;
};

// ---- connection ----

h2_connection::h2_connection(loop& l, tcp::socket s)
    : connection_base(l), opts_(l.srv.opts), socket_(std::move(s)),
      session_(settings_from(l.srv.opts, peer_of(socket_)), this), write_wake_(*l.ctx), tick_(*l.ctx),
      accepted_at_(clock_type::now()) {
  session_.set_logger(&l.srv.log());
  session_.set_stop_token(&l.stop_token);
  bump(l.h2_accepted);
}

void start_h2_connection(loop& l, tcp::socket s, std::string_view initial, const request* upgraded,
                         std::string_view settings) {
  auto c = std::make_shared<h2_connection>(l, std::move(s));
  h2_connection::start(std::move(c), initial, upgraded, settings);
}

void h2_connection::start(std::shared_ptr<h2_connection> self, std::string_view initial, const request* upgraded,
                          std::string_view settings) {
  auto& c = *self;
  if (upgraded) {
    h2_stream* st = c.session_.upgrade(settings, upgraded->method() == "HEAD");
    if (st) {
      h2_session::copy_request(*st, *upgraded);
      asio::co_spawn(*c.loop_.ctx, handle(self, st), asio::detached);
    }
  }
  if (!initial.empty()) c.session_.feed(initial.data(), initial.size());
  c.dispatch_ready();
  c.sync_counters();
  if (c.loop_.draining) c.begin_shutdown();
  asio::co_spawn(*c.loop_.ctx, writer(self), asio::detached);
  asio::co_spawn(*c.loop_.ctx, ticker(self), asio::detached);
  asio::co_spawn(*c.loop_.ctx, reader(self), asio::detached);
}

void h2_connection::kick() noexcept { write_wake_.cancel(); }
void h2_connection::retick() noexcept { tick_.cancel(); }

void h2_connection::dispatch_ready() {
  for (h2_stream* st : session_.take_ready())
    asio::co_spawn(*loop_.ctx, handle(shared_from_this(), st), asio::detached);
}

void h2_connection::sync_counters() noexcept {
  const auto& n = session_.counters();
  bump(loop_.h2_goaways, static_cast<std::int64_t>(n.goaways_sent - seen_.goaways_sent));
  bump(loop_.h2_refused, static_cast<std::int64_t>(n.streams_refused - seen_.streams_refused));
  bump(loop_.h2_reset, static_cast<std::int64_t>(n.streams_reset - seen_.streams_reset));
  bump(loop_.h2_streams, static_cast<std::int64_t>(n.streams_opened - seen_.streams_opened));
  seen_ = n;
}

asio::awaitable<void> h2_connection::handle(std::shared_ptr<h2_connection> self, h2_stream* st) {
  auto& c = *self;
  ++c.handlers_;
  c.begin_request();
  {
    sink sk(c, *st);
    bool answered = true;
    if (st->error_status) {
      fail_response(st->res, st->error_status,
                    st->error_status == 413   ? "request body too large"
                    : st->error_status == 431 ? "request header fields too large"
                    : st->error_status == 408 ? "request body not received in time"
                                              : "bad request");
    } else {
      dispatch_result r = dispatch_result::peer_gone;
      try {
        r = co_await dispatch(c.loop_.srv, st->req, st->res, sk);
      } catch (const std::exception& e) {
        c.loop_.srv.log().error("http2: stream failed: {}", e.what());
        r = dispatch_result::threw_mid_stream;
      }
      if (r == dispatch_result::threw_mid_stream) {
        c.session_.reset(*st, NGHTTP2_INTERNAL_ERROR);
        answered = false;
      } else if (r == dispatch_result::peer_gone) {
        answered = false;
      }
    }
    if (answered && !st->closed && !c.closed_) {
      if (sk.streaming()) c.session_.end(*st);
      else c.session_.respond(*st, c.loop_.date());
      c.loop_.count_status(st->res.status);
      c.loop_.count_h2_status(st->res.status);
    }
  }
  c.session_.release(*st);
  c.end_request();
  --c.handlers_;
  c.kick();
  c.maybe_finish();
}

asio::awaitable<void> h2_connection::reader(std::shared_ptr<h2_connection> self) {
  auto& c = *self;
  for (;;) {
    error_code ec;
    std::size_t n = co_await c.socket_.async_read_some(asio::buffer(c.read_buf_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec || n == 0) {
      c.peer_eof_ = true;
      break;
    }
    // Lingering close, or a connection error: discard until EOF or the linger cap, so the
    // kernel never answers unread bytes with a RST that would destroy our GOAWAY.
    if (c.lingering_ || c.closed_) continue;
    c.session_.feed(c.read_buf_.data(), n);
    c.dispatch_ready();
    c.sync_counters();
    c.kick();
    c.retick();
  }
  c.reader_done_ = true;
  c.kick();
  c.retick();
  c.maybe_finish();
}

asio::awaitable<void> h2_connection::writer(std::shared_ptr<h2_connection> self) {
  auto& c = *self;
  for (;;) {
    if (c.closed_) break;
    c.out_.clear();
    if (!c.lingering_) c.session_.produce(c.out_);
    c.sync_counters();
    if (!c.out_.empty()) {
      c.writing_since_ = clock_type::now();
      c.retick();
      error_code ec;
      co_await asio::async_write(c.socket_, asio::buffer(c.out_), asio::redirect_error(asio::use_awaitable, ec));
      c.writing_since_ = clock_type::time_point::max();
      if (ec) {
        c.close_now();
        break;
      }
      if (c.out_.capacity() > 256 * 1024) c.out_ = std::string();
      continue;
    }
    // Nothing to send. The connection ends when the session says so, or when the client is
    // gone (EOF: it will read nothing more, so there is nothing to protect).
    bool done = c.session_.finished() || (c.reader_done_ && c.peer_eof_);
    if (done && !c.lingering_) {
      if (c.peer_eof_) {
        c.close_now();
        break;
      }
      // Lingering close: FIN first, then discard input until the client closes or the cap,
      // so unread bytes never make the kernel send a RST over our last frames.
      c.lingering_ = true;
      error_code ig;
      c.socket_.shutdown(tcp::socket::shutdown_send, ig);
      c.linger_until_ = clock_type::now() + c.opts_.linger_timeout;
      c.retick();
    }
    if (c.lingering_ && c.reader_done_) {
      c.close_now();
      break;
    }
    c.write_wake_.expires_at(clock_type::time_point::max());
    error_code ec;
    co_await c.write_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  c.writer_done_ = true;
  c.retick();
  c.maybe_finish();
}

asio::awaitable<void> h2_connection::ticker(std::shared_ptr<h2_connection> self) {
  auto& c = *self;
  constexpr auto never = clock_type::time_point::max();
  while (!c.closed_) {
    auto now = clock_type::now();
    auto next = c.session_.expire(now, c.opts_.header_read_timeout, c.opts_.body_read_timeout, c.opts_.write_timeout);
    c.dispatch_ready();  // 408s
    using phase = h2_session::phase;
    // Shutdown phase 1 -> 2 without the PING ACK: the cap passed; send the final GOAWAY anyway.
    if (c.session_.current_phase() == phase::notice_sent && now >= c.ping_cap_at_) c.session_.final_goaway();
    // Idle: no stream for idle_timeout: GOAWAY (the client reconnects when it needs to).
    if (c.session_.current_phase() == phase::open && c.session_.streams() == 0 &&
        now - c.session_.last_activity() >= c.opts_.idle_timeout)
      c.session_.final_goaway();
    // A client that stopped reading: the write in progress is over its time.
    if (c.writing_since_ != never && now - c.writing_since_ >= c.opts_.write_timeout) {
      c.close_now();
      break;
    }
    if (c.lingering_ && now >= c.linger_until_) {
      c.close_now();
      break;
    }
    c.kick();
    // Sleep until the earliest deadline still pending.
    auto ph = c.session_.current_phase();
    if (ph == phase::notice_sent) next = std::min(next, c.ping_cap_at_);
    if (ph == phase::open && c.session_.streams() == 0) next = std::min(next, c.session_.last_activity() + c.opts_.idle_timeout);
    if (c.lingering_) next = std::min(next, c.linger_until_);
    if (c.writing_since_ != never) next = std::min(next, c.writing_since_ + c.opts_.write_timeout);
    if (next <= now) next = now + std::chrono::milliseconds(1);
    c.tick_.expires_at(next);
    error_code ec;
    co_await c.tick_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  c.ticker_done_ = true;
  c.maybe_finish();
}

void h2_connection::on_stream_writable(h2_stream& st) {
  auto it = sinks_.find(st.id);
  if (it != sinks_.end()) it->second->writable();
}

void h2_connection::begin_shutdown() {
  if (closed_) return;
  session_.begin_shutdown();
  if (ping_cap_at_ == clock_type::time_point::max()) ping_cap_at_ = clock_type::now() + opts_.http2_ping_timeout;
  for (auto& [id, s] : sinks_) s->stop();
  kick();
  retick();
}

void h2_connection::force_close() {
  close_now();
}

void h2_connection::close_now() noexcept {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  socket_.close(ec);
  write_wake_.cancel();
  tick_.cancel();
  for (auto& [id, s] : sinks_) s->stop();
  maybe_finish();
}

void h2_connection::maybe_finish() noexcept {
  // Unregister (shutdown's count) only once the socket is closed and no handler runs: a
  // handler still streaming keeps the connection counted, as HTTP/1.1 does.
  if (finished_ || !closed_ || handlers_ > 0) return;
  finished_ = true;
  sync_counters();
  finish();
}

void h2_connection::describe(std::string& out, clock_type::time_point now) const {
  using std::chrono::duration_cast;
  using ms = std::chrono::milliseconds;
  out += "  conn ";
  error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  out += ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
  out += " proto=h2 state=";
  switch (session_.current_phase()) {
    case h2_session::phase::open: out += lingering_ ? "lingering-close" : session_.streams() ? "active" : "idle"; break;
    case h2_session::phase::notice_sent: out += "goaway-notice"; break;
    case h2_session::phase::goaway_sent: out += lingering_ ? "lingering-close" : "goaway"; break;
  }
  out += " age=" + std::to_string(duration_cast<ms>(now - accepted_at_).count()) + "ms";
  out += " streams=" + std::to_string(session_.streams());
  out += '\n';
}

} // namespace graceful::http::detail
