#!/usr/bin/env bash
# Reliability figures: prints every row of bench/RESULTS.md's "Reliability" section.
#   fuzz rows             scripts/fuzz.sh SECONDS (libFuzzer, clang ASan+UBSan, build-fuzz/)
#   every other row       the "[figure]" line of a test: the labels reliability and slow, plus
#                         the two rows they borrow (lifecycle_signals stuck hook; server_upgrade
#                         SIGKILL of the old process mid-drain)
# The first line says which build the test rows ran on (CMAKE_BUILD_TYPE, GRACEFUL_SANITIZE).
# Exits 1 when a fuzz target or a test fails: a row of a failed run is not a result.
#
# Usage: bench/reliability.sh [BUILD_DIR] [--fuzz SECONDS]    (default build/, 60 s of fuzzing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=$repo/build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$(cd "$1" && pwd); shift; fi
fuzz=60
while [ $# -gt 0 ]; do
  case "$1" in
    --fuzz) fuzz=$2; shift 2 ;;
    *) echo "usage: $0 [BUILD_DIR] [--fuzz SECONDS]" >&2; exit 2 ;;
  esac
done
[ -f "$build/CMakeCache.txt" ] || { echo "no build in $build (cmake -S . -B $build ...)" >&2; exit 2; }
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
type=$(cache CMAKE_BUILD_TYPE); san=$(cache GRACEFUL_SANITIZE)
echo "tests: ${build#"$repo"/}, CMAKE_BUILD_TYPE=${type:-none}, sanitizers: ${san:-none}; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
status=0

# Fuzz rows.
"$repo/scripts/fuzz.sh" "$fuzz" >"$build/reliability-fuzz.log" 2>&1 || status=1
grep -E '^[a-z0-9_]+_fuzz: ' "$build/reliability-fuzz.log" || { tail -20 "$build/reliability-fuzz.log"; status=1; }

# Test rows: ctest -V prefixes each output line with the test number ("12: ").
cmake --build "$build" -j2 >/dev/null
run() { ctest --test-dir "$build" -j2 --timeout 600 -V "$@" >"$build/reliability-ctest.log" 2>&1 || status=1
        sed -n 's/^[0-9]*: \[figure\] //p' "$build/reliability-ctest.log"
        grep -E '^[0-9]+% tests passed|\*\*\*Failed|Not Run' "$build/reliability-ctest.log" | sed 's/^/  ctest: /'; }
run -L 'reliability|slow'
run -R 'lifecycle_signals\.a_stuck_hook_is_cut_at_the_deadline_and_named_in_the_log|server_upgrade\.sigkill_of_the_old_process_mid_drain_leaves_the_new_one_serving'
exit $status
