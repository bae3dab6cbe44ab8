// The HTTP/2 client of the load engine (h2_load.hpp says what counts as what).
#include "h2_load.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/write.hpp>

namespace graceful::bench {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

class h2_conn;
class h2_group;

/// One stream slot: a paced client whose requests go to its group's current connection.
class h2_client final : public paced_client {
public:
  h2_client(worker& w, unsigned index, std::shared_ptr<h2_group> g) : paced_client(w, index), group_(std::move(g)) {}

  void check_timeout(clock::time_point now) override;

  // Called by h2_conn with the generation the stream was sent for: a late event of an
  // attempt that was given up (timed out, retried elsewhere) is ignored.
  void on_response(std::uint64_t gen, int status);
  void on_failed(std::uint64_t gen, outcome k);
  void on_not_processed(std::uint64_t gen);

  bool in_flight() const noexcept { return in_flight_; }
  std::uint64_t gen() const noexcept { return gen_; }

protected:
  void begin(clock::time_point intended) override;
  void close_connection() override;

private:
  std::shared_ptr<h2_group> group_;
  clock::time_point intended_{};
  clock::time_point deadline_{};
  bool in_flight_ = false;
  std::uint64_t gen_ = 0;  // bumped by every attempt
};

/// The `-m` clients of one connection index and the connection they currently use; a
/// connection that got GOAWAY (or died) is replaced by a new one for the next request, while
/// it finishes its own streams.
class h2_group : public std::enable_shared_from_this<h2_group> {
public:
  h2_group(worker& w, unsigned clients) : w_(w), clients_(clients) {}
  void submit(h2_client& c);
  void cancel(h2_client& c);
  void client_finished();
  worker& w() { return w_; }
  /// Why the current connection is being replaced (set when it goes away or fails).
  std::optional<reconnect_cause> next_cause;

private:
  worker& w_;
  unsigned clients_;
  unsigned finished_ = 0;
  std::shared_ptr<h2_conn> current_;
  bool ever_ = false;
};

/// One TCP connection with nghttp2's client session on it.
class h2_conn : public std::enable_shared_from_this<h2_conn> {
public:
  h2_conn(h2_group& g, worker& w) : g_(g), w_(w), p_(w.p()), sock_(w.ioc()) {}
  ~h2_conn() {
    if (ng_) nghttp2_session_del(ng_);
  }

  /// True while new streams may go on it.
  bool usable() const noexcept { return !dead_ && !going_away_; }
  void start(std::optional<reconnect_cause> cause);
  void submit(h2_client& c);
  void cancel(h2_client& c);
  void close() {
    dead_ = true;
    error_code ig;
    sock_.close(ig);
  }

private:
  void on_connected(std::optional<reconnect_cause> cause);
  void send_request(h2_client& c);
  void flush();
  void read();
  void on_end(outcome k);
  void maybe_close();

  static int on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
                       const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u);
  static int on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* u);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int on_frame_not_send(nghttp2_session*, const nghttp2_frame* f, int, void* u);

  struct stream {
    h2_client* client = nullptr;  // null once it timed out
    std::uint64_t gen = 0;
    int status = 0;
    std::uint64_t body_left = 0;
  };

  h2_group& g_;
  worker& w_;
  const plan& p_;
  tcp::socket sock_;
  nghttp2_session* ng_ = nullptr;
  std::map<std::int32_t, stream> streams_;
  std::deque<h2_client*> waiting_;  // submitted before the connection was up
  std::string out_;
  char buf_[16 * 1024];
  bool connected_ = false;
  bool writing_ = false;
  bool in_recv_ = false;  // inside nghttp2_session_mem_recv: no mem_send from callbacks
  bool going_away_ = false;
  bool dead_ = false;
  std::int32_t goaway_last_ = 0x7fffffff;
};

// ---- client ----

void h2_client::begin(clock::time_point intended) {
  intended_ = intended;
  deadline_ = clock::now() + p_.o.timeout;
  in_flight_ = true;
  ++gen_;
  group_->submit(*this);
}

void h2_client::check_timeout(clock::time_point now) {
  if (!in_flight_ || now < deadline_) return;
  group_->cancel(*this);
  on_failed(gen_, outcome::timeout);
}

void h2_client::on_response(std::uint64_t gen, int status) {
  if (!in_flight_ || gen != gen_) return;
  in_flight_ = false;
  const outcome k = status >= 200 && status < 400 ? outcome::ok
                    : status >= 400 && status < 600 ? outcome::http_error
                                                    : outcome::other;
  record_request(w_.stats, p_, intended_, k, status, clock::now());
  after_request(k != outcome::ok);
}

void h2_client::on_failed(std::uint64_t gen, outcome k) {
  if (!in_flight_ || gen != gen_) return;
  in_flight_ = false;
  record_request(w_.stats, p_, intended_, k, 0, clock::now());
  after_request(true);
}

void h2_client::on_not_processed(std::uint64_t gen) {
  if (!in_flight_ || gen != gen_) return;
  // The server said it did not process it: safe to send again, on a new connection. The
  // latency keeps counting from the first attempt; the deadline stays too.
  ++gen_;
  ++w_.stats.connections.retried_streams;
  group_->submit(*this);
}

void h2_client::close_connection() { group_->client_finished(); }

// ---- group ----

void h2_group::submit(h2_client& c) {
  if (!current_ || !current_->usable()) {
    std::optional<reconnect_cause> cause;
    if (ever_) cause = next_cause.value_or(reconnect_cause::after_failure);
    next_cause.reset();
    ever_ = true;
    current_ = std::make_shared<h2_conn>(*this, w_);
    current_->start(cause);
  }
  current_->submit(c);
}

void h2_group::cancel(h2_client& c) {
  if (current_) current_->cancel(c);
}

void h2_group::client_finished() {
  if (++finished_ == clients_ && current_) {
    current_->close();
    current_.reset();
  }
}

// ---- connection ----

void h2_conn::start(std::optional<reconnect_cause> cause) {
  // Close-on-exec, as the HTTP/1.1 client: a server started by --exec must not inherit it.
  const int fd = ::socket(p_.endpoint.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  error_code ec;
  if (fd >= 0) sock_.assign(p_.endpoint.protocol(), fd, ec);
  if (fd < 0 || ec) {
    if (fd >= 0 && ec) ::close(fd);
    dead_ = true;
    auto self = shared_from_this();
    asio::post(w_.ioc(), [self] { self->on_end(outcome::other); });
    return;
  }
  sock_.async_connect(p_.endpoint, [self = shared_from_this(), cause](const error_code& cec) {
    if (self->dead_) return self->on_end(outcome::timeout);
    if (cec) {
      self->dead_ = true;
      return self->on_end(cec == asio::error::connection_refused ? outcome::connect_refused
                          : cec == asio::error::connection_reset ? outcome::connection_reset
                                                                 : outcome::other);
    }
    error_code lec;
    if (self->sock_.local_endpoint(lec) == self->p_.endpoint && !lec) {
      // TCP self-connect while nothing listens (see load.cpp): a refused connection.
      self->dead_ = true;
      return self->on_end(outcome::connect_refused);
    }
    self->on_connected(cause);
  });
}

void h2_conn::on_connected(std::optional<reconnect_cause> cause) {
  error_code ig;
  sock_.set_option(tcp::no_delay(true), ig);
  record_connection_opened(w_.stats, p_, cause, clock::now());
  nghttp2_session_callbacks* cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, &h2_conn::on_header);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &h2_conn::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &h2_conn::on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, &h2_conn::on_frame_not_send);
  nghttp2_session_client_new(&ng_, cb, this);
  nghttp2_session_callbacks_del(cb);
  // Large windows: the client reads as fast as it can; flow control is the server's to test.
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16u << 20}};
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, 64 << 20);
  connected_ = true;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto* c : waiting)
    if (c->in_flight()) send_request(*c);  // a waiting client that timed out was removed
  flush();
  read();
}

void h2_conn::submit(h2_client& c) {
  if (!connected_) return waiting_.push_back(&c);
  send_request(c);
  if (!in_recv_) flush();  // else the read handler flushes after mem_recv
}

void h2_conn::send_request(h2_client& c) {
  const auto& o = p_.o;
  std::string len = std::to_string(o.body_size);
  std::vector<std::pair<std::string, std::string>> h = {{":method", o.method},
                                                        {":scheme", "http"},
                                                        {":authority", o.where.host_header},
                                                        {":path", o.where.path},
                                                        {"user-agent", "graceful-bench"},
                                                        {"accept", "*/*"}};
  for (const auto& line : o.headers) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    value.erase(0, value.find_first_not_of(" \t"));
    // Connection-specific fields are not allowed in HTTP/2 (RFC 9113 8.2.2).
    if (name == "connection" || name == "host" || name == "keep-alive" || name == "transfer-encoding") continue;
    h.emplace_back(std::move(name), std::move(value));
  }
  bool body = o.body_size > 0;
  if (body) h.emplace_back("content-length", len);
  std::vector<nghttp2_nv> nv;
  for (auto& [k, v] : h)
    nv.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()), k.size(),
                  v.size(), NGHTTP2_NV_FLAG_NONE});
  nghttp2_data_provider prd{};
  prd.read_callback = [](nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t n, std::uint32_t* flags,
                         nghttp2_data_source*, void* u) -> ssize_t {
    auto* self = static_cast<h2_conn*>(u);
    auto it = self->streams_.find(id);
    std::uint64_t left = it == self->streams_.end() ? 0 : it->second.body_left;
    std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, left));
    std::memset(buf, 'x', k);
    if (it != self->streams_.end()) it->second.body_left -= k;
    if (left == k) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(k);
  };
  std::int32_t id = nghttp2_submit_request(ng_, nullptr, nv.data(), nv.size(), body ? &prd : nullptr, nullptr);
  if (id < 0) {
    going_away_ = true;
    return c.on_not_processed(c.gen());
  }
  streams_[id] = {&c, c.gen(), 0, o.body_size};
}

void h2_conn::cancel(h2_client& c) {
  for (auto& [id, st] : streams_)
    if (st.client == &c) {
      st.client = nullptr;
      if (ng_) nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &c), waiting_.end());
  flush();
}

void h2_conn::flush() {
  if (writing_ || dead_ || !ng_) return;
  out_.clear();
  for (;;) {
    const std::uint8_t* d = nullptr;
    auto n = nghttp2_session_mem_send(ng_, &d);
    if (n < 0) return on_end(outcome::other);
    if (n == 0) break;
    out_.append(reinterpret_cast<const char*>(d), static_cast<std::size_t>(n));
    if (out_.size() > 256 * 1024) break;
  }
  if (out_.empty()) return maybe_close();
  writing_ = true;
  asio::async_write(sock_, asio::buffer(out_), [self = shared_from_this()](const error_code& ec, std::size_t) {
    self->writing_ = false;
    if (ec) {
      if (self->dead_) return;
      return self->on_end(ec == asio::error::connection_reset || ec == asio::error::broken_pipe
                              ? outcome::connection_reset
                              : outcome::other);
    }
    self->flush();
  });
}

void h2_conn::read() {
  sock_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
    if (ec) {
      if (self->dead_ && self->streams_.empty()) return;
      return self->on_end(ec == asio::error::eof ? outcome::closed_before_response
                          : ec == asio::error::connection_reset ? outcome::connection_reset
                                                                : outcome::other);
    }
    self->in_recv_ = true;
    auto rv = nghttp2_session_mem_recv(self->ng_, reinterpret_cast<const std::uint8_t*>(self->buf_), n);
    self->in_recv_ = false;
    if (rv < 0) return self->on_end(outcome::other);
    self->flush();
    if (!self->dead_) self->read();
  });
}

void h2_conn::maybe_close() {
  // A connection that got GOAWAY closes once its last stream is done.
  if (going_away_ && streams_.empty() && !dead_) close();
}

void h2_conn::on_end(outcome k) {
  bool was_dead = dead_;
  close();
  if (!was_dead && !going_away_) g_.next_cause = reconnect_cause::after_failure;
  // Every stream still open: not processed (above the GOAWAY's id) is a retry; the rest may
  // have been processed and are lost.
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, st] : streams) {
    if (!st.client) continue;
    if (going_away_ && id > goaway_last_) st.client->on_not_processed(st.gen);
    else st.client->on_failed(st.gen, k);
  }
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto* c : waiting) c->on_failed(c->gen(), k);
}

int h2_conn::on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
                       const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) {
  auto* self = static_cast<h2_conn*>(u);
  if (f->hd.type != NGHTTP2_HEADERS || nl != 7 || std::memcmp(n, ":status", 7) != 0) return 0;
  auto it = self->streams_.find(f->hd.stream_id);
  if (it == self->streams_.end()) return 0;
  int status = 0;
  for (std::size_t i = 0; i < vl; ++i) status = status * 10 + (v[i] - '0');
  // An interim response (1xx) is followed by the final one.
  if (status >= 200) it->second.status = status;
  return 0;
}

int h2_conn::on_stream_close(nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
  auto* self = static_cast<h2_conn*>(u);
  auto it = self->streams_.find(id);
  if (it == self->streams_.end()) return 0;
  auto st = it->second;
  self->streams_.erase(it);
  if (!st.client) return 0;
  if (code == NGHTTP2_NO_ERROR && st.status > 0) st.client->on_response(st.gen, st.status);
  else if (code == NGHTTP2_REFUSED_STREAM) st.client->on_not_processed(st.gen);
  else st.client->on_failed(st.gen, code == NGHTTP2_NO_ERROR ? outcome::closed_before_response : outcome::connection_reset);
  return 0;
}

int h2_conn::on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto* self = static_cast<h2_conn*>(u);
  if (f->hd.type == NGHTTP2_GOAWAY) {
    if (!self->going_away_) self->g_.next_cause = reconnect_cause::goaway;
    self->going_away_ = true;
    self->goaway_last_ = std::min(self->goaway_last_, f->goaway.last_stream_id);
  }
  return 0;
}

int h2_conn::on_frame_not_send(nghttp2_session*, const nghttp2_frame* f, int, void* u) {
  // A request that could not go out (a GOAWAY arrived first): never seen by the server.
  auto* self = static_cast<h2_conn*>(u);
  if (f->hd.type != NGHTTP2_HEADERS) return 0;
  auto it = self->streams_.find(f->hd.stream_id);
  if (it == self->streams_.end()) return 0;
  auto st = it->second;
  self->streams_.erase(it);
  self->going_away_ = true;
  if (st.client) st.client->on_not_processed(st.gen);
  return 0;
}

} // namespace

void add_h2_clients(worker& w, unsigned conn_index, std::vector<std::unique_ptr<paced_client>>& out) {
  const unsigned m = std::max(1u, w.p().o.streams);
  auto g = std::make_shared<h2_group>(w, m);
  for (unsigned k = 0; k < m; ++k) out.push_back(std::make_unique<h2_client>(w, conn_index * m + k, g));
}

} // namespace graceful::bench
