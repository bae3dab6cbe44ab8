#include "systemd.hpp"

#include <cstdlib>

#include <systemd/sd-daemon.h>

#include <graceful/upgrade/errc.hpp>

namespace graceful::upgrade::detail {

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

bool under_systemd() {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return s && *s;
}

void notify(const std::string& state) {
  if (!under_systemd()) return;
  (void)sd_notify(0, state.c_str());
}

} // namespace graceful::upgrade::detail
