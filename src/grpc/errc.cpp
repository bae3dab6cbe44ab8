#include <graceful/grpc/errc.hpp>

namespace graceful::grpc {
namespace {

class category final : public std::error_category {
public:
  const char* name() const noexcept override { return "graceful.grpc"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::not_a_listener: return "not a listening stream socket";
      case errc::acceptor_stopped: return "the acceptor was stopped";
      case errc::calls_cancelled: return "the shutdown deadline passed; calls still in flight were cancelled";
    }
    return "unknown graceful.grpc error";
  }
};

} // namespace

const std::error_category& grpc_category() noexcept {
  static const category c;
  return c;
}

} // namespace graceful::grpc
