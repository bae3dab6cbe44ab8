#include <graceful/http/message.hpp>

#include "core/ascii.hpp"

namespace graceful::http {

using graceful::detail::iequals;

std::optional<std::string_view> request::query_param(std::string_view key) const noexcept {
  std::string_view q = query_;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    auto eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    if (k == key) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
  }
  return std::nullopt;
}

std::optional<std::string_view> request::header(std::string_view name) const noexcept {
  for (auto& f : headers_)
    if (iequals(f.name, name)) return f.value;
  return std::nullopt;
}

const std::stop_token& request::stop_token() const noexcept {
  static const std::stop_token never_requested;
  return stop_ ? *stop_ : never_requested;
}

} // namespace graceful::http
