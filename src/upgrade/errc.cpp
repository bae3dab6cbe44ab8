#include <graceful/upgrade/errc.hpp>

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
    }
    return "unknown graceful.upgrade error";
  }
};

} // namespace

const std::error_category& upgrade_category() noexcept {
  static const category c;
  return c;
}

} // namespace graceful::upgrade
