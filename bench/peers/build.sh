#!/usr/bin/env bash
# Builds the Go peers (go-http, go-tableflip), the idle-conns opener and the C floor server
# (floor/floor.c, with cc) into a build directory.
# Debian's golang-go 1.19 in GOPATH mode: no module downloads, cloudflare/tableflip comes from
# /usr/share/gocode (golang-github-cloudflare-tableflip-dev). Binaries are never committed.
#
# Usage: bench/peers/build.sh [OUT_DIR [NAME...]]
#   OUT_DIR defaults to <repo>/build/bench-peers; NAMEs (go-http, go-tableflip, idle-conns,
#   floor) default to all four. Prints OUT_DIR on success; exit 1 if go is missing or a build fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-${BENCH_PEERS_DIR:-$repo/build/bench-peers}}
case "$out" in
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(go-http go-tableflip idle-conns floor)
for p in "${names[@]}"; do
  [ -f "$here/$p/main.go" ] || [ -f "$here/$p/$p.c" ] || { echo "peers/build.sh: unknown peer $p" >&2; exit 2; }
done
command -v go >/dev/null || { echo "peers/build.sh: go not found (apt-get install golang-go)" >&2; exit 1; }
if [[ " ${names[*]} " == *" go-tableflip "* ]] && [ ! -d /usr/share/gocode/src/github.com/cloudflare/tableflip ]; then
  echo "peers/build.sh: tableflip missing (apt-get install golang-github-cloudflare-tableflip-dev)" >&2; exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Tests run in parallel (one ctest process per test) and may all ask for the same build.
exec 9>"$out/.lock"
flock -w 120 9 || { echo "peers/build.sh: $out is locked by another build for 120 s" >&2; exit 1; }
export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' CGO_ENABLED=0
# Keep Go's caches inside the build directory: nothing written to $HOME, and `rm -rf build` resets all.
export GOCACHE="$out/.gocache"
for p in "${names[@]}"; do
  if [ -f "$here/$p/$p.c" ]; then
    # The C peer: -O2 like the Release builds it is compared with.
    [ "$out/$p" -nt "$here/$p/$p.c" ] && continue
    "${CC:-cc}" -O2 -Wall -Wextra -Werror -pthread -o "$out/$p" "$here/$p/$p.c"
    continue
  fi
  # Skip the build when the binary is newer than its source (cheap re-runs from the harness).
  if [ "$out/$p" -nt "$here/$p/main.go" ]; then continue; fi
  (cd "$here/$p" && go build -trimpath -o "$out/$p" .)
done
echo "$out"
