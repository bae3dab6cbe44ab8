#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan, in build-fuzz/, only the HTTP library
# and the targets: nothing else is rebuilt) and runs each for a bounded time on the seed
# corpus (fuzz/corpus/http; fuzz/corpus/h2 for the HTTP/2 target). Any crash, sanitizer report, leak or hang (-timeout) fails.
#   scripts/fuzz.sh [seconds]     explore: default 60 s in all, split between the targets
#   scripts/fuzz.sh replay        run every checked-in input once (seeds and past crashes):
#                                 deterministic, what a regression looks like
# FUZZ_SEED=N fixes libFuzzer's seed (CI uses 1, so that a CI run can be repeated here).
# New interesting inputs go to build-fuzz/corpus/<target>/ (not into the repository);
# a crashing input is written to build-fuzz/artifacts/ and its path printed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
mode=explore
if [ "$seconds" = replay ]; then mode=replay; seconds=0; fi
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: give a whole number of seconds, or replay" >&2; exit 2 ;; esac
case "${FUZZ_SEED:-0}" in *[!0-9]*) echo "fuzz.sh: FUZZ_SEED must be a whole number" >&2; exit 2 ;; esac
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2; exit 2; }

build=build-fuzz
targets=(request_parser_fuzz http_server_fuzz h2_server_fuzz)
# Boost 1.74's Asio enables co_await for clang only with libc++'s <experimental/coroutine>;
# clang 14 with libstdc++ 12 has C++20 <coroutine>, which Asio already detects, so say so.
# Stack dumps (src/diag) use gcc's libbacktrace; its header lives among gcc's own headers,
# which clang must not see. Expose just backtrace*.h to clang.
gcc_inc="$(gcc -print-file-name=include)"
mkdir -p "$build/gcc-backtrace"
for h in backtrace.h backtrace-supported.h; do
  [ -e "$gcc_inc/$h" ] && ln -sf "$gcc_inc/$h" "$build/gcc-backtrace/$h"
done
# Sanitizers through CMAKE_CXX_FLAGS rather than GRACEFUL_SANITIZE so that the exception
# below comes after them: clang 14 fails on coroutines with UBSan's "function" check
# ("Cannot represent a difference across sections", llvm/llvm-project#49689).
sanitizers="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRACEFUL_BUILD_FUZZ=ON -DGRACEFUL_BUILD_TESTS=OFF -DGRACEFUL_BUILD_APPS=OFF \
  -DGRACEFUL_BUILD_EXAMPLES=OFF -DGRACEFUL_WERROR=OFF \
  -DGRACEFUL_SANITIZE= \
  -DCMAKE_CXX_FLAGS="$sanitizers -fno-sanitize=function -DBOOST_ASIO_HAS_CO_AWAIT=1 -isystem $PWD/$build/gcc-backtrace" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}"

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
per=$(( seconds / ${#targets[@]} )); [ "$per" -ge 1 ] || per=1
mkdir -p "$build/artifacts"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  log="$build/$t.log"
  seeds=fuzz/corpus/http
  [ "$t" = h2_server_fuzz ] && seeds=fuzz/corpus/h2
  if [ "$mode" = replay ]; then
    # Files, not the folder: libFuzzer then runs each input once and nothing else.
    inputs=("$seeds"/*)
    if ! "$build/bin/$t" -timeout=10 -rss_limit_mb=2048 "${inputs[@]}" >"$log" 2>&1; then
      status=1
      tail -n 60 "$log"
      echo "fuzz.sh: $t FAILED on a checked-in input (see above)" >&2
      continue
    fi
    echo "$t: ${#inputs[@]} checked-in inputs replayed, 0 crashes"
    continue
  fi
  echo "== $t: ${per}s =="
  # -timeout: one input taking over 10 s is a hang and fails like a crash.
  if ! "$build/bin/$t" -seed="${FUZZ_SEED:-0}" -max_total_time="$per" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
       "$build/corpus/$t" "$seeds" >"$log" 2>&1; then
    status=1
    tail -n 60 "$log"
    echo "fuzz.sh: $t FAILED (crash input in $build/artifacts/)" >&2
    continue
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  echo "$t: ${runs:-?} inputs in ${per}s (${rate:-?}/s), coverage ${cov:-?} edges, 0 crashes"
done
exit "$status"
