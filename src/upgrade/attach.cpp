// upgrader::attach lives apart from upgrader.cpp so that programs (and tests) that drive
// the upgrader without a lifecycle do not link the lifecycle's implementation.
#include <graceful/upgrade/upgrader.hpp>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include <graceful/lifecycle/lifecycle.hpp>

#include <graceful/upgrade/systemd.hpp>

namespace graceful::upgrade {

lifecycle::registration upgrader::attach(lifecycle::lifecycle& lc, attach_options o) {
  auto regs = std::make_shared<std::vector<lifecycle::registration>>();
  auto logger = opts_.logger;
  auto log = [logger]() -> spdlog::logger& { return logger ? *logger : *spdlog::default_logger_raw(); };
  // The SIGKILL of a stopped new process comes this much before the lifecycle's deadline, so
  // that it is reaped before this process exits (else it would be orphaned unkilled).
  auto before = [margin = o.reap_margin](graceful::deadline d) {
    return d.is_never() ? d : graceful::deadline(d.when() - margin);
  };

  on_handed_over([&lc, log, stop = std::move(o.stop_accepting)](pid_t pid) {
    // Before the stop begins, not in a shutdown hook: the drain phase would otherwise keep
    // accepting connections that the new process is ready to take.
    if (stop) {
      stop();
      log().info("upgrade: stopped accepting; new connections go to pid {}", pid);
    }
    // No drain delay: the sockets stay served by the new process, nobody needs to be told.
    lc.request_stop("upgraded to pid " + std::to_string(pid), {.drain_delay = std::chrono::milliseconds(0)});
  });
  on_parent_gone([&lc](pid_t parent) {
    // The parent's stop was forced (or it was killed) while it waited for us: the operator
    // did not get an upgrade, and a process nobody expects must not stay serving.
    lc.request_stop("hand-over abandoned (parent pid " + std::to_string(parent) + " exited before we were ready)",
                    {.drain_delay = std::chrono::milliseconds(0), .exit_code = 1});
  });
  regs->push_back(lc.on_signal(SIGHUP, "upgrade", [this, log] {
    log().info("upgrade: SIGHUP: upgrading to {}", opts_.executable.string());
    // start_upgrade logs a refusal (upgrade already running, not ready yet, handed over).
    (void)start_upgrade();
  }));
  regs->push_back(lc.on_drain("upgrade: stop an upgrade in flight", [this, before](graceful::deadline d) {
    bool handed = current_state() == state::handed_over;
    // After a hand-over the new process is the service: a STOPPING=1 from us would tell
    // systemd (NotifyAccess=all) that the service is going away.
    if (!handed && opts_.systemd_notify) notify_systemd("STOPPING=1");
    // Without waiting: a new process that got SIGTERM drains what it accepted, which may take
    // its whole shutdown timeout; this process drains meanwhile. The cleanup hook reaps it.
    stop_upgrades(before(d));
    // No upgrade can start from here on, so our copies of the listening sockets have no use
    // left, and they go now, before the program's shutdown hooks close its own: the program
    // then holds the last copies, and a server that accepts what is queued before closing
    // them (http::server does) leaves nothing in the kernel's queue to be reset. Kept until
    // the shutdown phase, they would let connections queue, after the program's last accept,
    // on a socket nobody accepts from. After a hand-over the new process holds its own copies.
    close_listeners();
  }));
  regs->push_back(lc.on_cleanup("upgrade: reap a stopped new process", [this, before](graceful::deadline d) {
    cancel(before(d));
  }));
  return lifecycle::registration([this, regs] {
    on_handed_over({});
    on_parent_gone({});
    regs->clear();
  });
}

} // namespace graceful::upgrade
