#include <graceful/http/router.hpp>

namespace graceful::http {

router& router::add(std::string method, std::string path, handler h) {
  for (auto& r : routes_) {
    if (r.method == method && r.path == path) {
      r.h = std::move(h);
      return *this;
    }
  }
  routes_.push_back(route{std::move(method), std::move(path), std::move(h)});
  return *this;
}

const handler* router::find(std::string_view method, std::string_view path, bool& path_known) const noexcept {
  // A linear scan: servers have a handful of routes, and comparing short strings in one
  // contiguous vector beats hashing them.
  path_known = false;
  const handler* get_for_head = nullptr;
  for (auto& r : routes_) {
    if (r.path != path) continue;
    path_known = true;
    if (r.method == method) return &r.h;
    if (method == "HEAD" && r.method == "GET") get_for_head = &r.h;
  }
  return get_for_head;
}

bool router::contains(std::string_view method, std::string_view path) const noexcept {
  for (auto& r : routes_)
    if (r.method == method && r.path == path) return true;
  return false;
}

std::string router::allowed(std::string_view path) const {
  std::string out;
  for (auto& r : routes_) {
    if (r.path != path) continue;
    if (!out.empty()) out += ", ";
    out += r.method;
    if (r.method == "GET") out += ", HEAD";
  }
  return out;
}

} // namespace graceful::http
