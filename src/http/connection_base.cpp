#include "http/connection_base.hpp"

#include "http/loop.hpp"

namespace graceful::http::detail {

connection_base::connection_base(loop& l) : loop_(l) {
  l.srv.retain();
  l.srv.connections.fetch_add(1, std::memory_order_relaxed);
  l.add(*this);
  registered_ = true;
}

connection_base::~connection_base() { finish(); }

void connection_base::begin_request() noexcept {
  ++in_flight_;
  bump(loop_.in_flight);
}

void connection_base::end_request() noexcept {
  if (in_flight_ == 0) return;
  --in_flight_;
  bump(loop_.in_flight, -1);
}

void connection_base::count_cut() noexcept {
  if (cut_counted_) return;
  cut_counted_ = true;
  bump(loop_.cut_requests);
  bump(loop_.cut_connections);
}

void connection_base::finish() noexcept {
  if (!registered_) return;
  registered_ = false;
  if (in_flight_) {
    bump(loop_.in_flight, -static_cast<std::int64_t>(in_flight_));
    in_flight_ = 0;
  }
  loop_.remove(*this);
  loop_.srv.connections.fetch_sub(1, std::memory_order_relaxed);
  loop_.srv.release();
}

} // namespace graceful::http::detail
