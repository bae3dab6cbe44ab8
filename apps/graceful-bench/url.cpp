#include "url.hpp"

#include <algorithm>
#include <cctype>

namespace graceful::bench {

std::optional<target> parse_url(std::string_view url, std::string& why) {
  constexpr std::string_view scheme = "http://";
  if (url.size() >= 8 && url.substr(0, 8) == "https://") {
    why = "https:// is not supported (plaintext HTTP/1.1 only)";
    return std::nullopt;
  }
  if (url.substr(0, scheme.size()) != scheme) {
    why = "the URL must start with http://";
    return std::nullopt;
  }
  std::string_view rest = url.substr(scheme.size());
  const auto slash = std::min(rest.find('/'), rest.find('?'));
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    why = "user:password@ in the URL is not supported";
    return std::nullopt;
  }
  target t;
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      why = "unterminated [IPv6] address in the URL";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        why = "unexpected text after ] in the URL";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    why = "the URL has no host";
    return std::nullopt;
  }
  if (!port.empty()) {
    const bool digits = std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || port.size() > 5 || std::stoul(std::string(port)) == 0 ||
        std::stoul(std::string(port)) > 65535) {
      why = "bad port in the URL: " + std::string(port);
      return std::nullopt;
    }
    t.port = std::string(port);
  }
  for (char c : path) {
    // A request-target must not contain whitespace or controls (RFC 9112 3.2).
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ') {
      why = "the URL path contains spaces or control characters";
      return std::nullopt;
    }
  }
  t.host = std::string(host);
  t.path = path.empty() ? "/" : (path.front() == '?' ? "/" + std::string(path) : std::string(path));
  t.host_header = std::string(authority);
  return t;
}

} // namespace graceful::bench
