#include <graceful/core/find_executable.hpp>

#include <cstdlib>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

namespace graceful {
namespace {

std::string default_search_path() {
  // glibc's execvp uses _CS_PATH when PATH is unset (posix/execvpe.c).
  std::size_t n = ::confstr(_CS_PATH, nullptr, 0);
  if (n == 0) return "/bin:/usr/bin";
  std::string s(n, '\0');
  ::confstr(_CS_PATH, s.data(), n);
  s.resize(n - 1);  // without the NUL confstr counts
  return s;
}

bool executable_file(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

} // namespace

result<std::filesystem::path> find_executable(std::string_view name) {
  if (name.empty()) return std::make_error_code(std::errc::no_such_file_or_directory);
  if (name.find('/') != std::string_view::npos) return std::filesystem::path(name);
  const char* env = std::getenv("PATH");
  std::string search = env ? std::string(env) : default_search_path();
  std::string_view rest = search;
  while (true) {
    auto colon = rest.find(':');
    auto dir = rest.substr(0, colon);
    std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + std::string(name);
    if (executable_file(candidate)) return std::filesystem::path(candidate);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return std::make_error_code(std::errc::no_such_file_or_directory);
}

} // namespace graceful
