#include "proc.hpp"

#include <cstdlib>
#include <fstream>
#include <string>

#include <dirent.h>

namespace graceful::run {

pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  // "pid (comm) state ppid ...": comm may contain spaces and ')', so parse after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos || close + 4 >= line.size()) return -1;
  auto rest = line.substr(close + 2);  // "S 123 ..."
  auto sp = rest.find(' ');
  if (sp == std::string::npos) return -1;
  return static_cast<pid_t>(std::strtol(rest.c_str() + sp + 1, nullptr, 10));
}

bool descends_from(pid_t pid, pid_t ancestor) {
  for (int i = 0; i < 64 && pid > 1; ++i) {
    if (pid == ancestor) return true;
    pid = parent_of(pid);
  }
  return pid == ancestor;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (parent_of(static_cast<pid_t>(pid)) == parent) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

} // namespace graceful::run
