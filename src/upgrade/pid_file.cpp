#include <graceful/upgrade/pid_file.hpp>

#include <graceful/core/last_errno.hpp>

#include <cerrno>
#include <charconv>
#include <random>
#include <string>

#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <graceful/core/deadline.hpp>
#include <graceful/upgrade/unique_fd.hpp>

namespace graceful::upgrade {
namespace {

// Writes and removals of pid files in one directory hold flock(2) on the directory itself
// (no lock file is left behind), so that remove_pid_file_if_owned's read, compare and unlink
// is one step to a successor renaming its own file in. The wait is bounded: a holder that
// hangs (a stopped process) costs a writer at most this long, after which it writes
// unlocked (naming the live process matters more), and a removal is skipped (leaving a
// stale file is the safe side). flock has no timeout, so the wait retries LOCK_NB.
constexpr std::chrono::milliseconds dir_lock_timeout{2000};
constexpr std::chrono::milliseconds dir_lock_retry{1};

std::filesystem::path dir_of(const std::filesystem::path& path) {
  return path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
}

// The directory, open and locked. Errors: the open's, or timed_out.
result<unique_fd> lock_dir(const std::filesystem::path& dir) {
  unique_fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return last_errno();
  auto d = graceful::deadline::after(dir_lock_timeout);
  while (::flock(dfd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return last_errno();
    if (d.expired()) return std::make_error_code(std::errc::timed_out);
    std::this_thread::sleep_for(dir_lock_retry);
  }
  return dfd;  // unlocked by close
}
} // namespace

result<void> write_pid_file(const std::filesystem::path& path, pid_t pid) {
  if (path.empty() || !path.has_filename()) return std::make_error_code(std::errc::invalid_argument);
  auto dir = dir_of(path);
  auto lock = lock_dir(dir);  // on failure: unlocked, and the open below reports a bad directory
  unique_fd locked = lock ? std::move(lock.value()) : unique_fd();
  // A random temp name created with O_EXCL|O_NOFOLLOW: an attacker who can write the
  // directory cannot pre-plant a symlink at a predictable name to make us write elsewhere.
  std::random_device rd;
  auto tmp = dir / ("." + path.filename().string() + "." + std::to_string(pid) + "." +
                    std::to_string(rd()) + ".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return last_errno();
  std::string text = std::to_string(pid) + "\n";
  bool good = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  good = good && ::fsync(fd) == 0;
  auto ec = last_errno();
  ::close(fd);
  // rename(2) replaces a symlink at `path` itself and never writes through it; readers see
  // the old content or the new, never a partial file.
  if (!good || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (good) ec = last_errno();
    ::unlink(tmp.c_str());
    return ec;
  }
  // Make the rename durable, so a crash right after does not bring back the old pid.
  unique_fd dfd = locked ? std::move(locked) : unique_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());
  return graceful::ok();
}

result<pid_t> read_pid_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return last_errno();
  char buf[32];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return std::make_error_code(std::errc::invalid_argument);
  std::string_view s(buf, static_cast<std::size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), pid);
  if (ec != std::errc{} || end != s.data() + s.size() || pid <= 0)
    return std::make_error_code(std::errc::invalid_argument);
  return pid;
}

result<bool> remove_pid_file_if_owned(const std::filesystem::path& path, pid_t pid) {
  auto locked = lock_dir(dir_of(path));
  if (!locked) {
    auto ec = locked.error();
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) return false;  // no file
    return ec;
  }
  auto cur = read_pid_file(path);
  if (!cur) return cur.error() == std::errc::no_such_file_or_directory ? result<bool>(false) : cur.error();
  if (cur.value() != pid) return false;
  if (::unlink(path.c_str()) != 0) return last_errno();
  return true;
}

} // namespace graceful::upgrade
