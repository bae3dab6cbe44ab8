// The lingering close of an HTTP/1.1 connection: FIN, then drain until the kernel says the
// response was delivered (tcp_state), bounded by linger_timeout and linger_max_bytes.
#include "http/http1_connection.hpp"

#include <algorithm>
#include <cerrno>

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/dispatch.hpp"
#include "http/drained_wait.hpp"
#include "http/h2_connection.hpp"
#include "http/loop.hpp"
#include "http/message_access.hpp"
#include "http/response_writer.hpp"
#include "http/tcp_state.hpp"
#include "http/tuning.hpp"

namespace graceful::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = http1_connection::clock_type;

/// FIN first, then read and discard input, so that the kernel never answers unread input
/// with a RST that would destroy our last response. Ends when the client closes, or as soon
/// as the kernel says the whole response was acknowledged and nothing unread has arrived for
/// the quiet time (options::linger_quiet, or a few round trips); linger_timeout and
/// linger_max_bytes bound it whatever the client does.
asio::awaitable<void> http1_connection::linger_close() {
  if (closed_) co_return;
  phase_ = phase::lingering;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    const int fd = socket_.native_handle();
    const auto until = clock_type::now() + opts_.linger_timeout;
    // When the last input arrived, or the delivery was first seen: the quiet time runs from
    // the later of the two. max: not delivered yet.
    auto quiet_from = clock_type::time_point::max();
    std::size_t total = 0;
    for (;;) {
      if (closed_) break;
      // Discard what has arrived, without waiting.
      bool eof = false, failed = false, arrived = false;
      for (;;) {
        st_->in_.clear();
        auto buf = st_->in_.prepare(read_size);
        auto n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
          arrived = true;
          total += static_cast<std::size_t>(n);
          if (total >= opts_.linger_max_bytes) break;
          continue;
        }
        if (n == 0) eof = true;  // the client closed: nothing left to protect
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) failed = true;
        break;
      }
      st_->in_.clear();
      if (eof || failed || total >= opts_.linger_max_bytes) break;
      auto now = clock_type::now();
      if (now >= until) break;
      auto k = read_tcp_state(fd);
      auto wake = until;
      if (k.known && k.unread == 0) {
        // After shutdown the FIN counts as one unacknowledged byte.
        bool delivered = k.unacked <= 1;
        if (delivered) {
          if (quiet_from == clock_type::time_point::max() || arrived) quiet_from = now;
          auto quiet = std::max<clock_type::duration>(opts_.linger_quiet, linger_quiet_rtts * k.min_rtt);
          if (now >= quiet_from + quiet) break;
          wake = std::min(wake, quiet_from + quiet);
        } else {
          // No event tells of an ACK: ask again after about one round trip.
          wake = std::min(wake, now + std::clamp<clock_type::duration>(k.min_rtt, linger_poll_min, linger_poll_max));
        }
      }
      // Unknown state (not TCP?): the old rule, read until the client closes or time is up.
      set_deadline(wake);
      co_await async_wait_drained(socket_, asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  socket_.close(ec);
}

} // namespace graceful::http::detail
