#include <graceful/upgrade/systemd.hpp>

#include <cstdlib>
#include <string>

#include <unistd.h>

#ifndef GRACEFUL_WITH_SYSTEMD
#define GRACEFUL_WITH_SYSTEMD 1
#endif
#if GRACEFUL_WITH_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace graceful::upgrade {

#if GRACEFUL_WITH_SYSTEMD

result<std::vector<named_fd>> systemd_listen_fds() {
  char** names = nullptr;
  // unset_environment=1: LISTEN_* describe fds of this exact process; a grandchild that
  // saw them would adopt unrelated fds (sd_listen_fds(3)). sd_listen_fds_with_names also
  // checks LISTEN_PID == getpid() and sets FD_CLOEXEC on the fds.
  int n = sd_listen_fds_with_names(1, &names);
  if (n < 0) return std::error_code(-n, std::generic_category());
  std::vector<named_fd> out;
  for (int i = 0; i < n; ++i) {
    std::string name = names && names[i] ? names[i] : "unknown";
    out.push_back({name, SD_LISTEN_FDS_START + i});
  }
  if (names) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return out;
}

void notify_systemd(std::string_view state) {
  if (!under_systemd()) return;
  (void)sd_notify(0, std::string(state).c_str());
}

#else  // built without libsystemd

result<std::vector<named_fd>> systemd_listen_fds() {
  const char* pid = std::getenv("LISTEN_PID");
  bool activated = pid && std::getenv("LISTEN_FDS") && std::to_string(::getpid()) == pid;
  // Refuse rather than ignore: serving without the sockets systemd passed would bind anew
  // and fail (or serve another socket) in a way much harder to understand.
  if (activated) return std::make_error_code(std::errc::not_supported);
  return std::vector<named_fd>{};
}

void notify_systemd(std::string_view) {}

#endif

bool under_systemd() {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return s && *s;
}

} // namespace graceful::upgrade
