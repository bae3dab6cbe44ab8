#!/usr/bin/env bash
# graceful-run: failed requests across 10 SIGHUP restarts and across a worker crash, with Go
# net/http workers that take their listener from LISTEN_FDS, measured by graceful-bench in the
# same run as the same Go server restarted without graceful-run (stop, start again).
#
# Usage: bench/graceful-run.sh [BUILD_DIR] [-c CONNECTIONS] [-d DURATION]
#   BUILD_DIR defaults to build/ (needs bin/graceful-run, bin/graceful-bench and, from the test
#   build, bin/graceful-run-go-worker; go-http is built by bench/peers/build.sh).
# Scenarios (each in keep-alive and --close mode; actions start at 2 s):
#   run+go-worker   graceful-run, worker answers "Connection: close" 200 ms before Shutdown; 10 SIGHUP 0.4 s apart
#   run+graceful-server  graceful-run, graceful-server adopting the "http" socket by socket activation; 10 SIGHUP
#   run+go-http     graceful-run, bench/peers/go-http -listen-fds (plain Shutdown); 10 SIGHUP
#   go-http-restart go-http alone, SIGTERM then started again, 10 times 0.4 s apart (no held socket)
#   run+crash       graceful-run + go-worker, the worker SIGKILLed once (restart backoff 100 ms)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=$repo/build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$(cd "$1" && pwd); shift; fi
conns=16 dur=8s
while [ $# -gt 0 ]; do
  case "$1" in
    -c) conns=$2; shift 2 ;;
    -d) dur=$2; shift 2 ;;
    *) echo "usage: $0 [BUILD_DIR] [-c N] [-d D]" >&2; exit 2 ;;
  esac
done
bin=$build/bin
for b in graceful-run graceful-bench graceful-run-go-worker; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b (cmake --build $build --target integration_tests)" >&2; exit 1; }
done
peers=$("$here/peers/build.sh" "$build/bench-peers" go-http)
tmp=$(mktemp -d)
trap 'for p in $(cat "$tmp"/*.pid 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port/

# bench MODE ACTION -> prints "failures refused reset closed requests"
bench() {
  local flags=()
  [ "$1" = close ] && flags=(--close)
  "$bin/graceful-bench" "$url" -c "$conns" -d "$dur" "${flags[@]}" --at 2s --exec "$2" --json "$tmp/out.json" >/dev/null 2>&1 || true
  python3 - "$tmp/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); f = j["failures"]
print(f["total"], f["connect_refused"], f["connection_reset"], f["closed_before_response"], j["requests"])
PY
}
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
start_run() {  # worker command...
  "$bin/graceful-run" --listen http=127.0.0.1:$port --pid-file "$tmp/run.pid" -- "$@" >"$tmp/worker.out" 2>"$tmp/run.log" &
  echo $! >"$tmp/run.bg.pid"
  wait_port
}
stop_run() { kill -TERM "$(cat "$tmp/run.bg.pid")"; wait "$(cat "$tmp/run.bg.pid")" || true; }
hup10='for i in $(seq 10); do kill -HUP $(cat '"$tmp"'/run.pid); sleep 0.4; done'

printf '| scenario | mode | requests | failed | refused | reset | closed before response |\n|---|---|---:|---:|---:|---:|---:|\n'
for mode in keepalive close; do
  start_run "$bin/graceful-run-go-worker"
  read -r f r s c n < <(bench $mode "$hup10"); stop_run
  printf '| run+go-worker, 10 SIGHUP | %s | %s | %s | %s | %s | %s |\n' $mode "$n" "$f" "$r" "$s" "$c"

  if [ -x "$bin/graceful-server" ]; then
    start_run "$bin/graceful-server" --listen 127.0.0.1:$port
    read -r f r s c n < <(bench $mode "$hup10"); stop_run
    printf '| run+graceful-server, 10 SIGHUP | %s | %s | %s | %s | %s | %s |\n' $mode "$n" "$f" "$r" "$s" "$c"
  fi

  start_run "$peers/go-http" -listen-fds
  read -r f r s c n < <(bench $mode "$hup10"); stop_run
  printf '| run+go-http, 10 SIGHUP | %s | %s | %s | %s | %s | %s |\n' $mode "$n" "$f" "$r" "$s" "$c"

  "$peers/go-http" -listen 127.0.0.1:$port -pid-file "$tmp/go.pid" 2>/dev/null & wait_port
  restart='for i in $(seq 10); do p=$(cat '"$tmp"'/go.pid); kill -TERM $p; while kill -0 $p 2>/dev/null; do sleep 0.01; done; '"$peers"'/go-http -listen 127.0.0.1:'"$port"' -pid-file '"$tmp"'/go.pid 2>/dev/null & sleep 0.4; done'
  read -r f r s c n < <(bench $mode "$restart")
  kill -TERM "$(cat "$tmp/go.pid")" 2>/dev/null || true; sleep 0.3
  printf '| go-http alone, 10 stop+start | %s | %s | %s | %s | %s | %s |\n' $mode "$n" "$f" "$r" "$s" "$c"

  start_run "$bin/graceful-run-go-worker"
  crash='kill -KILL $(sed -n "s/.*worker \([0-9]*\) ready.*/\1/p" '"$tmp"'/run.log | tail -1)'
  read -r f r s c n < <(bench $mode "$crash"); stop_run
  printf '| run+go-worker, worker SIGKILL | %s | %s | %s | %s | %s | %s |\n' $mode "$n" "$f" "$r" "$s" "$c"
done
