#include "listeners.hpp"

#include <cerrno>
#include <algorithm>

#include <fcntl.h>
#include <sys/stat.h>

#include <spdlog/logger.h>

#include <graceful/core/address.hpp>
#include <graceful/core/last_errno.hpp>
#include <graceful/upgrade/listeners.hpp>
#include <graceful/upgrade/systemd.hpp>

namespace graceful::run {
namespace {

// Moves `fd` to a number >= min_fd, close-on-exec, and closes the original.
graceful::result<unique_fd> renumber(unique_fd fd, int min_fd) {
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, min_fd);
  if (moved < 0) return graceful::last_errno();
  return unique_fd{moved};
}

} // namespace

graceful::result<std::vector<listener>> open_listeners(
    const std::vector<std::pair<std::string, std::string>>& wanted,
    const std::shared_ptr<spdlog::logger>& log, std::string* failed) {
  // graceful-run's own activation (LISTEN_PID must be ours); the variables are unset so they
  // cannot reach a worker.
  // Variables libsystemd cannot read are ignored, as they always were here.
  auto sd = upgrade::systemd_listen_fds();
  if (!sd) log->warn("ignoring systemd's LISTEN_FDS: {}", sd.error().message());
  auto passed = sd ? std::move(sd).value() : std::vector<upgrade::named_fd>{};
  auto adopted = upgrade::listeners::adopt(passed, upgrade::origin::systemd);
  if (!adopted) {
    if (failed) *failed = "LISTEN_FDS";
    return adopted.error();
  }
  upgrade::listeners held = std::move(adopted).value();
  // The layer logs each socket it creates; graceful-run logs one line per listener itself.
  auto quiet = log->clone(log->name());
  quiet->set_level(std::max(log->level(), spdlog::level::warn));
  held.set_logger(quiet);

  std::vector<std::pair<std::string, std::string>> want = wanted;
  if (want.empty())
    for (auto& p : passed) want.emplace_back(p.name, "");  // hand on what systemd gave us

  std::vector<listener> out;
  const int min_fd = 3 + static_cast<int>(want.size());
  for (auto& [name, address] : want) {
    listener l;
    l.name = name;
    l.address = address.empty() ? "systemd" : address;
    l.inherited = held.origin_of(name) == upgrade::origin::systemd;
    std::string addr = address;
    if (address.empty()) {
      // Inherited unasked: claim it with its own bound address.
      for (auto& p : passed)
        if (p.name == name) addr = upgrade::local_address(p.fd);
    } else if (auto at = graceful::address::parse(addr); !l.inherited && at && at.value().family() == AF_UNIX) {
      // A socket file left by an earlier run would make bind fail with EADDRINUSE; remove
      // it, but only when it is a socket, never a regular file someone mistyped.
      std::string path = at.value().to_string().substr(std::string_view("unix:").size());
      struct stat st{};
      if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
    }
    auto fd = held.listen(name, addr);
    if (!fd) {
      if (failed) *failed = name + "=" + address;
      return fd.error();
    }
    auto moved = renumber(std::move(fd).value(), min_fd);
    if (!moved) return moved.error();
    l.fd = std::move(moved).value();
    l.bound = upgrade::local_address(l.fd.get());
    out.push_back(std::move(l));
  }
  for (auto& name : held.close_unclaimed())
    log->warn("closed the socket \"{}\" systemd passed: no --listen asks for it", name);
  // Our copies (renumbered above) are the ones kept; the layer's own copies go.
  held.close_all();
  return out;
}

} // namespace graceful::run
