#pragma once
// Test support: what kind of build this is, and how reliability tests report a figure.

#include <chrono>
#include <cstdio>
#include <string>

namespace graceful::test {

/// True in an ASan or TSan build: heavy tests scale down there and say so, and generous
/// bounds on a behaviour under test (a timeout that must fire) are scaled up.
constexpr bool sanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif

/// `d`, times 5 under a sanitizer (ASan and TSan slow a program 2-15x; 5 covers the ones
/// here on the 2-core CI machine).
template <class Rep, class Period>
constexpr std::chrono::milliseconds scaled(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d) * (sanitized ? 5 : 1);
}

/// Prints a figure the way every reliability test reports it: one greppable line.
inline void figure(const std::string& line) {
  std::printf("[figure] %s\n", line.c_str());
  std::fflush(stdout);
}

} // namespace graceful::test
