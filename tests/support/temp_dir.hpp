#pragma once
// Test support: a private directory under /tmp, removed with everything in it at the end.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace graceful::test {

/// mkdtemp(/tmp/graceful-<tag>-XXXXXX); removed by the destructor.
class temp_dir {
public:
  explicit temp_dir(const std::string& tag = "test") {
    std::string t = "/tmp/graceful-" + tag + "-XXXXXX";
    if (::mkdtemp(t.data())) path_ = t;
  }
  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  /// path()/name as a string.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  /// Number of entries in the directory.
  int files() const {
    int n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path_)) ++n;
    return n;
  }

private:
  std::filesystem::path path_;
};

} // namespace graceful::test
