#include <graceful/upgrade/errc.hpp>

#include <graceful/core/errc.hpp>

namespace graceful::upgrade {
namespace {

class category final : public std::error_category {
public:
  const char* name() const noexcept override { return "graceful.upgrade"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::upgrade_in_progress: return "an upgrade is already in progress";
      case errc::handed_over: return "the listening sockets were already handed over";
      case errc::not_ready: return "not ready yet: call ready() before upgrading";
      case errc::child_exited: return "the new process exited before it was ready";
      case errc::child_not_ready: return "the new process was not ready within the upgrade timeout";
      case errc::upgrade_cancelled: return "the upgrade was cancelled because the process is stopping";
      case errc::protocol_mismatch: return "the other process speaks another hand-over protocol version";
      case errc::invalid_inherited_fd: return "an inherited fd is not a listening socket";
      case errc::address_mismatch: return "an inherited socket is bound to another address than requested";
      case errc::bad_address: return "bad listen address (want host:port, [v6]:port or unix:/path)";
      case errc::duplicate_name: return "two listening sockets with one name";
      case errc::peer_rejected: return "takeover peer rejected (other user or unsafe socket mode)";
      case errc::takeover_failed: return "the takeover conversation failed";
      case errc::unsafe_path: return "refusing an unsafe path (symlink or not a regular file)";
      case errc::invalid_name: return "invalid listener name (1-255 bytes, no ':' or control characters)";
      case errc::parent_gone: return "the process that started this hand-over exited before it completed";
    }
    return "unknown graceful.upgrade error";
  }
  std::error_condition default_error_condition(int v) const noexcept override {
    switch (static_cast<errc>(v)) {
      case errc::invalid_inherited_fd:
      case errc::address_mismatch:
      case errc::bad_address:
      case errc::duplicate_name:
      case errc::invalid_name:
      case errc::protocol_mismatch:
      case errc::peer_rejected:
        return condition::bad_configuration;
      default:
        return {v, *this};
    }
  }
};

class condition_category final : public std::error_category {
public:
  const char* name() const noexcept override { return "graceful.upgrade.condition"; }
  std::string message(int v) const override {
    switch (static_cast<condition>(v)) {
      case condition::bad_configuration: return "bad configuration: the process was started wrongly";
    }
    return "unknown graceful.upgrade condition";
  }
};

} // namespace

const std::error_category& upgrade_category() noexcept {
  static const category c;
  return c;
}

const std::error_category& upgrade_condition_category() noexcept {
  static const condition_category c;
  return c;
}

int exit_code_for(const std::error_code& ec) noexcept {
  // A bad listen address (core's address parser) is a configuration error too.
  return ec == condition::bad_configuration || graceful::is_address_error(ec) ? 2 : 1;
}

} // namespace graceful::upgrade
