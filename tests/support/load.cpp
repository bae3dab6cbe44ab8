#include "load.hpp"

#include <cerrno>

namespace graceful::test {

const char* name(outcome o) {
  switch (o) {
  case outcome::ok: return "ok";
  case outcome::http_error: return "http_error";
  case outcome::refused: return "refused";
  case outcome::reset: return "reset";
  case outcome::closed: return "closed";
  case outcome::timeout: return "timeout";
  case outcome::other: return "other";
  }
  return "?";
}

outcome request_client::get(const std::string& path, bool keep_alive, std::string* body) {
  if (!conn_) {
    conn_ = std::make_unique<http_conn>(port_);
    if (!conn_->connected()) {
      int e = conn_->errno_value();
      conn_.reset();
      return e == ECONNREFUSED ? outcome::refused : e == ECONNRESET ? outcome::reset : outcome::other;
    }
  }
  auto fail = [&](read_end end) {
    conn_.reset();
    switch (end) {
    case read_end::reset: return outcome::reset;
    case read_end::eof: return outcome::closed;
    case read_end::timeout: return outcome::timeout;
    default: return outcome::other;
    }
  };
  if (!conn_->send(get_request(path, keep_alive ? "" : "Connection: close\r\n"))) return fail(conn_->last_end());
  auto r = conn_->read_response(deadline::after(std::chrono::seconds(5)));
  if (!r) return fail(conn_->last_end());
  if (body) *body = r->body;
  if (!keep_alive || r->closes()) conn_.reset();
  return r->status >= 200 && r->status < 300 ? outcome::ok : outcome::http_error;
}

std::optional<std::string> get_body(int port, const std::string& path) {
  request_client c(port);
  std::string body;
  if (c.get(path, false, &body) != outcome::ok) return std::nullopt;
  return body;
}

load::load(int port, int connections, bool keep_alive) {
  for (int i = 0; i < connections; ++i)
    threads_.emplace_back([this, port, keep_alive] {
      request_client c(port);
      while (!stop_.load()) counts_[static_cast<int>(c.get("/", keep_alive))].fetch_add(1);
    });
}

void load::stop() {
  stop_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

long load::failures() const {
  long n = 0;
  for (int i = 1; i < 7; ++i) n += counts_[i].load();
  return n;
}

std::string load::summary() const {
  std::string s;
  for (int i = 0; i < 7; ++i) s += std::string(name(static_cast<outcome>(i))) + "=" + std::to_string(counts_[i].load()) + " ";
  return s;
}

} // namespace graceful::test
