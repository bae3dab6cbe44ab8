#!/usr/bin/env bash
# Installs what is missing, builds with -Wall -Wextra -Werror, and runs the whole test suite.
#   scripts/test.sh                               plain build in build/
#   scripts/test.sh --sanitize address,undefined  ASan+UBSan build in build-asan/
#   scripts/test.sh --sanitize thread             TSan build in build-tsan/
# Anything after the options goes to ctest (e.g. -R lifecycle, -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
if [ "${1:-}" = "--sanitize" ]; then
  sanitize="$2"
  shift 2
fi
case "$sanitize" in
  "") build=build ;;
  address,undefined) build=build-asan ;;
  thread) build=build-tsan ;;
  *) echo "test.sh: --sanitize takes address,undefined or thread" >&2; exit 2 ;;
esac

./scripts/install-deps.sh
launcher=()
if command -v ccache >/dev/null; then
  # Worktrees and clean clones side by side share one cache: paths are hashed relative to
  # the folder that holds them.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$PWD")}"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
extra=()
if [ "$sanitize" = thread ]; then
  # TSan sees only code compiled with -fsanitize=thread. Debian's libgrpc/absl are not, and
  # absl's futex-based mutexes are invisible to it, so every callback gRPC runs on its own
  # threads would be reported as a race: graceful::grpc is checked by the plain and the
  # ASan+UBSan builds instead.
  extra=(-DGRACEFUL_WITH_GRPC=OFF)
fi
# Compile time is most of CI's 45 minutes on 2 cores, so the test builds are built for it:
# - line tables only (-g1: file:line in every sanitizer report, stack dump and gdb
#   backtrace), not full debug info, which costs a third of the build time;
# - the plain build at -O2, what ships; the sanitizer builds at -Og, optimised just enough
#   that the instrumented code is not slow, where -O2 nearly doubles their compile time.
# One heavy translation unit (examples/echo-server/main.cpp), seconds: plain -O2 -g 33,
# -O2 -g1 23; ASan+UBSan -O2 -g 90, -O1 -g1 48-51, -Og -g1 28; TSan -O2 -g 34, -O1 -g1 20.
opt=-O2
[ -n "$sanitize" ] && opt=-Og
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "${extra[@]}" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt -g1 -DNDEBUG" \
  -DGRACEFUL_WERROR=ON -DGRACEFUL_SANITIZE="$sanitize" >/dev/null
cmake --build "$build"

# Sanitizers: abort on the first report so ctest sees a failure.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
# Allocations gRPC, absl and protobuf keep for the life of the process (uninstrumented
# Debian libraries) are theirs, not leaks of ours.
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
runner=()
if [ "$sanitize" = thread ] && [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 ]; then
  # TSan in GCC 12 cannot map its shadow with the high ASLR entropy of newer kernels;
  # running without address randomisation is the documented workaround.
  runner=(setarch "$(uname -m)" -R)
fi
"${runner[@]}" ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 600 ${CTEST_EXTRA:-} "$@"
