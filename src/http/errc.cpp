#include <graceful/http/errc.hpp>

#include <string>

namespace graceful::http {

namespace {
class category final : public std::error_category {
public:
  const char* name() const noexcept override { return "graceful.http"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::server_closed: return "server closed";
      case errc::shutdown_timeout: return "shutdown deadline passed with connections still open";
      case errc::bad_address: return "bad listen address (want host:port, [v6]:port or :port)";
      case errc::not_a_listener: return "not a listening TCP socket";
    }
    return "unknown graceful.http error " + std::to_string(v);
  }
};
} // namespace

const std::error_category& http_category() noexcept {
  static const category c;
  return c;
}

} // namespace graceful::http
