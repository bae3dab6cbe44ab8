#include <graceful/upgrade/listeners.hpp>


#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <graceful/core/address.hpp>
#include <graceful/core/last_errno.hpp>
#include <graceful/core/listen_socket.hpp>
#include <graceful/upgrade/errc.hpp>

namespace graceful::upgrade {

std::string_view to_string(origin o) noexcept {
  switch (o) {
    case origin::created: return "created";
    case origin::parent: return "parent";
    case origin::systemd: return "systemd";
    case origin::takeover: return "takeover";
  }
  return "unknown";
}

namespace {

spdlog::logger& log_of(const std::shared_ptr<spdlog::logger>& l) {
  return l ? *l : *spdlog::default_logger_raw();
}

// What an fd is, for error messages about forged or stale inherited fds.
std::string describe_fd(int fd) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) return "not an open fd";
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a pipe";
    case S_IFCHR: return "a character device";
    case S_IFSOCK: return "a socket";
  }
  return "a special fd (eventfd, epoll, ...)";
}

int sockopt_int(int fd, int opt) {
  int v = -1;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0) return -1;
  return v;
}

// A datagram socket or one that never called listen() cannot be served; says why.
bool is_listening_stream(spdlog::logger& log, int fd, std::string_view name, origin from) {
  int type = sockopt_int(fd, SO_TYPE), acc = sockopt_int(fd, SO_ACCEPTCONN);
  if (type == SOCK_STREAM && acc == 1) return true;
  log.error("upgrade: inherited fd {} for '{}' (from {}) is not a listening stream socket "
            "(SO_TYPE={}, SO_ACCEPTCONN={})", fd, name, to_string(from), type, acc);
  return false;
}

} // namespace

result<listeners> listeners::adopt(const std::vector<named_fd>& fds, origin from,
                                    std::shared_ptr<spdlog::logger> logger) {
  auto& log = log_of(logger);
  // Validate everything before owning anything: if one fd is forged, none are ours to close.
  for (std::size_t i = 0; i < fds.size(); ++i) {
    struct stat st{};
    if (fds[i].fd < 0 || ::fstat(fds[i].fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
      log.error("upgrade: inherited fd {} ('{}', from {}) is {}, not a socket; refusing the inherited set",
                fds[i].fd, fds[i].name, to_string(from), describe_fd(fds[i].fd));
      return errc::invalid_inherited_fd;
    }
    for (std::size_t j = 0; j < i; ++j)
      if (fds[j].name == fds[i].name) {
        log.error("upgrade: two inherited fds ({} and {}) are both named '{}'", fds[j].fd, fds[i].fd,
                  fds[i].name);
        return errc::duplicate_name;
      }
  }
  listeners l;
  for (auto& nf : fds) {
    // Inherited fds arrive without FD_CLOEXEC (that is how they crossed exec); set it so that
    // nothing this process spawns on its own inherits them.
    int flags = ::fcntl(nf.fd, F_GETFD);
    if (flags >= 0) ::fcntl(nf.fd, F_SETFD, flags | FD_CLOEXEC);
    l.entries_.emplace(nf.name, entry{unique_fd(nf.fd), from, false});
  }
  l.logger_ = std::move(logger);
  return l;
}

result<unique_fd> listeners::listen(std::string_view name, std::string_view address, const listen_options& lo) {
  auto& log = log_of(logger_);
  auto wanted = graceful::address::parse(address);
  if (!wanted) {
    log.error("upgrade: listener '{}': bad address '{}': {}", name, address, wanted.error().message());
    return wanted.error();
  }
  auto it = entries_.find(name);
  if (it != entries_.end() && it->second.claimed) {
    log.error("upgrade: listener '{}' requested twice", name);
    return errc::duplicate_name;
  }
  if (it != entries_.end()) {
    int fd = it->second.fd.get();
    // An inherited fd must be exactly what the program asks for; adopting a socket of the
    // wrong type or address would serve the wrong port silently.
    if (!is_listening_stream(log, fd, name, it->second.from)) return errc::invalid_inherited_fd;
    auto bound = graceful::address::of_socket(fd);
    if (!bound) return bound.error();
    if (!wanted.value().matched_by(bound.value())) {
      log.error("upgrade: inherited fd {} for '{}' (from {}) is bound to {}, but '{}' was asked for", fd, name,
                to_string(it->second.from), bound.value().to_string(), address);
      return errc::address_mismatch;
    }
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) return last_errno();
    it->second.claimed = true;
    log.info("upgrade: listener '{}' on {}: inherited from {} (fd {})", name, bound.value().to_string(),
             to_string(it->second.from), fd);
    return unique_fd(dup);
  }

  auto s = open_listen_socket(wanted.value(), {.backlog = lo.backlog});
  if (!s) {
    log.error("upgrade: listener '{}': cannot listen on {}: {}", name, address, s.error().message());
    return s.error();
  }
  int dup = ::fcntl(s.value().get(), F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return last_errno();
  log.info("upgrade: listener '{}' on {}: created", name, local_address(s.value().get()));
  entries_.insert_or_assign(std::string(name), entry{std::move(s).value(), origin::created, true});
  return unique_fd(dup);
}

result<std::vector<owned_listener>> listeners::listen_inherited() {
  auto& log = log_of(logger_);
  // Check them all before claiming any, so a failure leaves the set as it was.
  for (auto& [name, e] : entries_)
    if (!e.claimed && !is_listening_stream(log, e.fd.get(), name, e.from)) return errc::invalid_inherited_fd;
  std::vector<owned_listener> out;
  for (auto& [name, e] : entries_) {
    if (e.claimed) continue;
    int dup = ::fcntl(e.fd.get(), F_DUPFD_CLOEXEC, 3);
    if (dup < 0) return last_errno();  // those already in `out` close with it, unclaimed
    out.push_back({name, unique_fd(dup)});
  }
  for (auto& l : out) {
    auto& e = entries_.find(l.name)->second;
    e.claimed = true;
    log.info("upgrade: listener '{}' on {}: inherited from {} (fd {})", l.name, local_address(e.fd.get()),
             to_string(e.from), e.fd.get());
  }
  return out;
}

std::vector<std::string> listeners::close_unclaimed() {
  std::vector<std::string> closed;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (!it->second.claimed) {
      log_of(logger_).info("upgrade: closing inherited listener '{}' (fd {}): this version does not use it",
                           it->first, it->second.fd.get());
      closed.push_back(it->first);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  return closed;
}

std::vector<named_fd> listeners::active() const {
  std::vector<named_fd> out;
  for (auto& [name, e] : entries_)
    if (e.claimed) out.push_back({name, e.fd.get()});
  return out;
}

origin listeners::origin_of(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? origin::created : it->second.from;
}

std::vector<std::string> listeners::unclaimed() const {
  std::vector<std::string> out;
  for (auto& [name, e] : entries_)
    if (!e.claimed) out.push_back(name);
  return out;
}

void listeners::close_all() noexcept { entries_.clear(); }

std::string local_address(int fd) {
  auto a = graceful::address::of_socket(fd);
  return a ? a.value().to_string() : std::string();
}

} // namespace graceful::upgrade
