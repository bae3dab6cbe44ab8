#pragma once
/// \file
/// Routing by method and exact path to handlers that are plain functions or Asio coroutines.

#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <graceful/http/context.hpp>

namespace graceful::http {

/// A handler that answers on the event loop's thread before returning (it must not block).
using sync_handler = std::function<void(context&)>;
/// A handler that is an Asio coroutine: it may co_await timers or upstream calls.
using async_handler = std::function<boost::asio::awaitable<void>(context&)>;
/// Either kind.
using handler = std::variant<sync_handler, async_handler>;

/// Maps (method, path) to handlers. Unknown paths get 404, known paths with another method
/// 405 with Allow, HEAD is served by the GET handler with the body left out.
class router {
public:
  /// Routes `method` + exact `path` to `f`: `void(context&)` or `awaitable<void>(context&)`.
  /// A later route for the same method and path replaces the earlier one.
  template <class F> router& handle(std::string method, std::string path, F f) {
    if constexpr (std::is_same_v<std::invoke_result_t<F&, context&>, boost::asio::awaitable<void>>)
      return add(std::move(method), std::move(path), handler{std::in_place_index<1>, async_handler(std::move(f))});
    else
      return add(std::move(method), std::move(path), handler{std::in_place_index<0>, sync_handler(std::move(f))});
  }
  /// handle("GET", path, f).
  template <class F> router& get(std::string path, F f) { return handle("GET", std::move(path), std::move(f)); }
  /// handle("POST", path, f).
  template <class F> router& post(std::string path, F f) { return handle("POST", std::move(path), std::move(f)); }

  /// The handler for method + path, or null. `path_known` tells 404 from 405.
  const handler* find(std::string_view method, std::string_view path, bool& path_known) const noexcept;
  /// True when a route exists for exactly this method and path.
  bool contains(std::string_view method, std::string_view path) const noexcept;
  /// The methods routed for `path`, comma-separated (for Allow).
  std::string allowed(std::string_view path) const;

private:
  router& add(std::string method, std::string path, handler h);
  struct route { std::string method, path; handler h; };
  std::vector<route> routes_;
};

} // namespace graceful::http
