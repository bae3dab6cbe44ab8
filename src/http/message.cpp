#include <graceful/http/message.hpp>

#include <algorithm>
#include <cctype>

namespace graceful::http {

namespace {
bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
} // namespace

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
