// Uses the installed graceful package the way an outside project would.
#include <cstdio>
#include <graceful/lifecycle/lifecycle.hpp>

int main() {
  graceful::lifecycle::lifecycle lc({.handle_signals = false});
  lc.request_stop("consumer test");
  int code = lc.run();
  std::printf("consumer: stop requested, exit %d\n", code);
  return code;
}
