#include <graceful/upgrade/pid_file.hpp>

#include <graceful/core/last_errno.hpp>

#include <cerrno>
#include <charconv>
#include <random>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>

namespace graceful::upgrade {
namespace {
}

result<void> write_pid_file(const std::filesystem::path& path, pid_t pid) {
  if (path.empty() || !path.has_filename()) return std::make_error_code(std::errc::invalid_argument);
  auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
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
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
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
  auto cur = read_pid_file(path);
  if (!cur) return cur.error() == std::errc::no_such_file_or_directory ? result<bool>(false) : cur.error();
  if (cur.value() != pid) return false;
  if (::unlink(path.c_str()) != 0) return last_errno();
  return true;
}

} // namespace graceful::upgrade
