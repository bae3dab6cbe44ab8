#include <graceful/core/errc.hpp>

#include <string>

namespace graceful {
namespace {

class category final : public std::error_category {
public:
  const char* name() const noexcept override { return "graceful.core"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::address_empty: return "empty listen address (want host:port, [v6]:port, :port or unix:/path)";
      case errc::address_missing_port: return "listen address without a port (want host:port, [v6]:port or :port)";
      case errc::address_bad_port: return "listen address port is not a number from 0 to 65535";
      case errc::address_unclosed_bracket: return "listen address: '[' without ']:port' after the IPv6 address";
      case errc::address_ipv6_needs_brackets: return "listen address: an IPv6 address needs brackets ([::1]:80)";
      case errc::address_bad_host:
        return "listen address host is not a numeric IPv4/IPv6 address, '*' or 'localhost' (names are not resolved)";
      case errc::address_unix_path_empty: return "listen address 'unix:' without a path";
      case errc::address_unix_path_too_long: return "UNIX socket path too long (107 bytes at most)";
    }
    return "unknown graceful.core error";
  }
};

} // namespace

const std::error_category& core_category() noexcept {
  static const category c;
  return c;
}

bool is_address_error(const std::error_code& ec) noexcept {
  return ec.category() == core_category() && ec.value() >= static_cast<int>(errc::address_empty) &&
         ec.value() <= static_cast<int>(errc::address_unix_path_too_long);
}

} // namespace graceful
