// Stack traces of every thread. See include/graceful/diag/thread_dump.hpp for the technique.
//
// Boost.Stacktrace is used header-only with its libbacktrace backend (gcc's libbacktrace.a,
// linked privately): it symbolizes static functions from the DWARF/symtab, which the
// default dladdr backend cannot. Keep every Boost.Stacktrace use in this one file so that no
// other translation unit instantiates it with a different backend.
#define BOOST_STACKTRACE_USE_BACKTRACE
#include <graceful/diag/thread_dump.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/stacktrace.hpp>
#include <fmt/format.h>

#include <graceful/diag/errc.hpp>

namespace graceful::diag {
namespace {

using native_frame = boost::stacktrace::frame::native_frame_ptr_t;

constexpr std::size_t max_threads = 512;
constexpr std::size_t max_frames = 64;

// Slot states. A slot is written by one thread's signal handler while the dumper waits.
// Storage is static so that a handler arriving after the dumper gave up writes into memory
// that still exists (it is only ever reused after the slot left the `writing` state).
enum : int { slot_free = 0, slot_waiting = 1, slot_writing = 2, slot_done = 3 };

struct slot {
  std::atomic<pid_t> tid{0};
  std::atomic<int> state{slot_free};
  std::size_t count = 0;
  std::array<native_frame, max_frames> frames{};
};

std::array<slot, max_threads> g_slots;
std::mutex g_dump_mutex;       // one capture at a time
bool g_handler_installed = false;  // guarded by g_dump_mutex

pid_t current_tid() noexcept { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// Runs in the interrupted thread: only async-signal-safe work (atomics, gettid, unwinding).
void on_dump_signal(int, siginfo_t*, void*) {
  int saved_errno = errno;
  pid_t me = current_tid();
  for (auto& s : g_slots) {
    if (s.tid.load(std::memory_order_acquire) != me) continue;
    int expected = slot_waiting;
    if (s.state.compare_exchange_strong(expected, slot_writing, std::memory_order_acq_rel)) {
      // safe_dump_to stores a terminating null frame: room for max_frames - 1 real ones.
      // skip 1: this handler; the next frame is the kernel's sigreturn trampoline, then the
      // code the thread was running.
      std::size_t n = boost::stacktrace::safe_dump_to(1, s.frames.data(), sizeof(s.frames));
      s.count = n;
      s.state.store(slot_done, std::memory_order_release);
    }
    break;
  }
  errno = saved_errno;
}

bool install_handler() {
  if (g_handler_installed) return true;
  struct sigaction old{};
  if (sigaction(dump_signal(), nullptr, &old) != 0) return false;
  bool ours = (old.sa_flags & SA_SIGINFO) && old.sa_sigaction == &on_dump_signal;
  if (!ours && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) return false;
  struct sigaction sa{};
  sa.sa_sigaction = &on_dump_signal;
  sigemptyset(&sa.sa_mask);
  // SA_RESTART: system calls that can be restarted are, so most code never sees EINTR.
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  if (sigaction(dump_signal(), &sa, nullptr) != 0) return false;
  g_handler_installed = true;
  return true;
}

std::vector<pid_t> list_threads() {
  std::vector<pid_t> tids;
  if (DIR* d = opendir("/proc/self/task")) {
    while (auto* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      tids.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
    }
    closedir(d);
  }
  std::sort(tids.begin(), tids.end());
  return tids;
}

std::string thread_name(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string n;
  std::getline(f, n);
  return n;
}

// True when the thread blocks `sig` (SigBlk in /proc/<pid>/task/<tid>/status, proc(5)).
// Such a thread (e.g. a sanitizer's background thread, which blocks everything) would never
// answer; knowing it up front saves waiting for the deadline.
bool blocks_signal(pid_t tid, int sig) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("SigBlk:", 0) != 0) continue;
    unsigned long long mask = std::strtoull(line.c_str() + 7, nullptr, 16);
    return (mask >> (sig - 1)) & 1ull;
  }
  return false;
}

std::vector<std::string> symbolize(const native_frame* frames, std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n && frames[i]; ++i) {
    boost::stacktrace::frame f(frames[i]);
    std::string s = boost::stacktrace::to_string(f);
    if (s.empty()) s = fmt::format("{}", frames[i]);
    out.push_back(std::move(s));
  }
  return out;
}

} // namespace

int dump_signal() noexcept { return SIGRTMIN + 6; }

result<std::vector<thread_stack>> capture_all_threads(graceful::deadline d) {
  std::unique_lock lk(g_dump_mutex, std::try_to_lock);
  if (!lk.owns_lock()) return errc::dump_in_progress;
  if (!install_handler()) return errc::dump_signal_in_use;

  const pid_t me = current_tid();
  const pid_t pid = ::getpid();
  auto tids = list_threads();
  if (tids.size() > max_threads) tids.resize(max_threads);

  // A late handler from a previous dump may still be writing: wait it out before reuse.
  for (auto& s : g_slots) {
    while (s.state.load(std::memory_order_acquire) == slot_writing) std::this_thread::yield();
    s.state.store(slot_free, std::memory_order_relaxed);
    s.tid.store(0, std::memory_order_relaxed);
  }

  std::vector<thread_stack> out(tids.size());
  std::vector<bool> signalled(tids.size(), false);
  for (std::size_t i = 0; i < tids.size(); ++i) {
    out[i].tid = tids[i];
    out[i].name = thread_name(tids[i]);
    if (tids[i] == me) continue;
    if (blocks_signal(tids[i], dump_signal())) {
      out[i].blocks_signal = true;
      continue;
    }
    g_slots[i].count = 0;
    g_slots[i].state.store(slot_waiting, std::memory_order_relaxed);
    g_slots[i].tid.store(tids[i], std::memory_order_release);
    // ESRCH: the thread exited since we listed it; it simply has no stack to show.
    signalled[i] = ::syscall(SYS_tgkill, pid, tids[i], dump_signal()) == 0;
  }

  // This thread records its own stack directly.
  for (std::size_t i = 0; i < tids.size(); ++i) {
    if (tids[i] != me) continue;
    std::array<native_frame, max_frames> frames{};
    std::size_t n = boost::stacktrace::safe_dump_to(0, frames.data(), sizeof(frames));
    out[i].frames = symbolize(frames.data(), n);
    out[i].captured = true;
  }

  // Wait for the answers; 1 ms polls keep this cheap and bounded by `d`.
  for (;;) {
    bool all = true;
    for (std::size_t i = 0; i < tids.size(); ++i)
      if (signalled[i] && g_slots[i].state.load(std::memory_order_acquire) != slot_done) all = false;
    if (all || d.expired()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  for (std::size_t i = 0; i < tids.size(); ++i) {
    if (!signalled[i]) continue;
    auto& s = g_slots[i];
    int expected = slot_waiting;
    // Give up on a thread that has not answered; a late handler then finds no waiting slot.
    if (s.state.compare_exchange_strong(expected, slot_free, std::memory_order_acq_rel)) continue;
    while (s.state.load(std::memory_order_acquire) == slot_writing) std::this_thread::yield();
    out[i].frames = symbolize(s.frames.data(), s.count);
    out[i].captured = true;
  }
  for (auto& s : g_slots) {
    s.tid.store(0, std::memory_order_release);
    s.state.store(slot_free, std::memory_order_release);
  }
  return out;
}

std::string diag_file_name(std::string_view program, std::string_view kind, std::string_view ext,
                           std::chrono::system_clock::time_point when) {
  std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[16];
  std::strftime(stamp, sizeof stamp, "%m%d%H%M%S", &tm);  // go-zero's "0102150405"
  return fmt::format("{}-{}-{}-{}.{}", program, ::getpid(), kind, stamp, ext);
}

std::string format_dump(std::string_view program, const std::vector<thread_stack>& threads,
                        const std::vector<section>& sections) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S%z", &tm);
  std::string s = fmt::format("graceful thread dump\nprogram: {}\npid: {}\ntime: {}\nthreads: {}\n",
                              program, ::getpid(), when, threads.size());
  for (const auto& th : threads) {
    std::string_view note = th.captured        ? ""
                            : th.blocks_signal ? " (blocks the dump signal: no stack)"
                                               : " (did not answer in time: no stack)";
    s += fmt::format("\n--- thread {} \"{}\"{} ---\n", th.tid, th.name, note);
    for (std::size_t i = 0; i < th.frames.size(); ++i) s += fmt::format("#{:<2} {}\n", i, th.frames[i]);
  }
  for (const auto& sec : sections) {
    s += fmt::format("\n=== {} ===\n{}", sec.name, sec.text);
    if (!sec.text.empty() && sec.text.back() != '\n') s += '\n';
  }
  return s;
}

result<std::filesystem::path> write_thread_dump(const std::filesystem::path& dir, std::string_view program,
                                                const std::vector<section>& sections) {
  auto threads = capture_all_threads(graceful::deadline::after(std::chrono::seconds(1)));
  if (!threads) return threads.error();
  std::string text = format_dump(program, threads.value(), sections);
  auto path = dir / diag_file_name(program, "threads", "dump");
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return std::error_code(errno ? errno : EIO, std::generic_category());
  f << text;
  f.close();
  if (!f) return std::error_code(EIO, std::generic_category());
  return path;
}

} // namespace graceful::diag
