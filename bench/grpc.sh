#!/usr/bin/env bash
# gRPC: failed calls and latency across one restart under unary load, for four servers of the
# same Greeter service (examples/grpc-greeter/greeter.proto), measured in one run by the same
# client (grpc-greeter-client load: gRPC's C++ client, one connection per channel, every call
# with wait_for_ready, closed loop).
#
# Usage: bench/grpc.sh [BUILD_DIR] [-c CONNECTIONS] [-d DURATION]
#   BUILD_DIR defaults to build/ (needs bin/grpc-greeter, bin/grpc-greeter-client,
#   bin/grpc-greeter-plain); the Go peer is built offline into BUILD_DIR/bench-peers.
# Scenarios (restart at 2 s; defaults -c 16 -d 14s: long enough for every connection to reach the 10 s max age after the upgrade):
#   greeter-sighup      grpc-greeter, SIGHUP upgrade (default --max-connection-age 10s)
#   greeter-sighup-age0 the same with --max-connection-age 0: the old process calls
#                       Server::Shutdown at once (shows what gRPC's own GOAWAY costs)
#   go-gracefulstop     grpc-go server: SIGTERM -> GracefulStop -> exit, then started again
#   cpp-shutdown        plain gRPC C++ server: SIGTERM -> Shutdown(25 s) -> exit, then started again
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=$repo/build
case "${1:-}" in -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$(cd "$1" && pwd); shift; fi
conns=16 dur=14s
while [ $# -gt 0 ]; do
  case "$1" in
    -c) conns=$2; shift 2 ;;
    -d) dur=$2; shift 2 ;;
    *) echo "usage: $0 [BUILD_DIR] [-c N] [-d D]" >&2; exit 2 ;;
  esac
done
bin=$build/bin
for b in grpc-greeter grpc-greeter-client grpc-greeter-plain; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b (cmake --build $build --target $b)" >&2; exit 1; }
done
for t in go protoc protoc-gen-go; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done

# The grpc-go peer, offline: Go code from greeter.proto by Debian's protoc-gen-go 1.3, GOPATH mode.
peers=$build/bench-peers
mkdir -p "$peers/gopath-grpc/src/greeterpb"
export GO111MODULE=off GOFLAGS='' CGO_ENABLED=0 GOCACHE="$peers/.gocache"
if [ ! "$peers/grpc-go-greeter" -nt "$here/peers/grpc-go-greeter/main.go" ]; then
  protoc -I"$repo/examples/grpc-greeter" --go_out=plugins=grpc:"$peers/gopath-grpc/src/greeterpb" \
    "$repo/examples/grpc-greeter/greeter.proto"
  (cd "$here/peers/grpc-go-greeter" && GOPATH="$peers/gopath-grpc:/usr/share/gocode" \
    go build -trimpath -o "$peers/grpc-go-greeter" .)
fi

tmp=$(mktemp -d)
trap 'for p in $(cat "$tmp"/*.pid 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
wait_gone() { while kill -0 "$1" 2>/dev/null; do sleep 0.05; done; }

# run NAME ACTION: the load with ACTION at 2 s; prints one table row from the JSON.
run() {
  "$bin/grpc-greeter-client" load --target "$addr" -c "$conns" -d "$dur" --at 2s --exec "$2" \
    --json "$tmp/$1.json" 2>"$tmp/$1.client" || true
  python3 - "$1" "$tmp/$1.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[2])); l = j["latency_ms"]
codes = ", ".join(f"{k} {v}" for k, v in sorted(j["failures"].items())) or "-"
print(f"| {sys.argv[1]} | {j['calls']} | **{j['failed']}** | {codes} | {l['p50']:.2f} | {l['p99']:.2f} | {l['max']:.1f} | {len(j['pids'])} |")
PY
}

# A server restarted by "stop, then start": ACTION stops the one in $tmp/server.pid, waits for
# it to exit, and starts CMD again (detached, so it outlives the action's shell).
restart_action() {  # CMD...
  printf 'p=$(cat %s/server.pid); kill -TERM $p; while kill -0 $p 2>/dev/null; do sleep 0.01; done; ' "$tmp"
  printf 'setsid %s >>%s/server.log 2>&1 < /dev/null & echo $! > %s/server.pid' "$*" "$tmp" "$tmp"
}
stop_server() {
  local p; p=$(cat "$tmp/server.pid"); kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$p" 2>/dev/null || true
}

echo "| server, restart at 2 s | calls | failed | failures by status | p50 ms | p99 ms | max ms | server pids |"
echo "|---|---:|---:|---|---:|---:|---:|---:|"

"$bin/grpc-greeter" --listen "$addr" --pid-file "$tmp/server.pid" --log-level warn >"$tmp/greeter.log" 2>&1 &
wait_port
run greeter-sighup "kill -HUP \$(cat $tmp/server.pid)"
stop_server; wait

"$bin/grpc-greeter" --listen "$addr" --pid-file "$tmp/server.pid" --max-connection-age 0 --log-level warn \
  >"$tmp/greeter0.log" 2>&1 &
wait_port
run greeter-sighup-age0 "kill -HUP \$(cat $tmp/server.pid)"
stop_server; wait

setsid "$peers/grpc-go-greeter" -listen "$addr" >"$tmp/server.log" 2>&1 < /dev/null & echo $! >"$tmp/server.pid"
wait_port
run go-gracefulstop "$(restart_action "$peers/grpc-go-greeter" -listen "$addr")"
stop_server

setsid "$bin/grpc-greeter-plain" "$addr" >"$tmp/server.log" 2>&1 < /dev/null & echo $! >"$tmp/server.pid"
wait_port
run cpp-shutdown "$(restart_action "$bin/grpc-greeter-plain" "$addr")"
stop_server
echo
echo "(-c $conns -d $dur, one run each; latency over all calls of the run, the restart included)"
