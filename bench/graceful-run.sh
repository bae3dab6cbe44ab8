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
# "restarts" counts what happened (graceful-run's "upgrade complete" / "worker N ready" lines,
# go-http's new pids); the script exits 1 when fewer happened than a row claims, and when
# graceful-bench itself fails (exit code other than 0 or 1, or no JSON).
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
port=0 url=
fail=0

# bench MODE ACTION -> prints "failures refused reset closed requests". graceful-bench exits 0
# (no failure) or 1 (some requests failed: counted and printed); anything else is a broken run.
bench() {
  local flags=() rc=0
  [ "$1" = close ] && flags=(--close)
  rm -f "$tmp/out.json"
  "$bin/graceful-bench" "$url" -c "$conns" -d "$dur" "${flags[@]}" --at 2s --exec "$2" --json "$tmp/out.json" \
    >"$tmp/bench.out" 2>&1 || rc=$?
  if [ "$rc" -gt 1 ] || [ ! -s "$tmp/out.json" ]; then
    echo "graceful-bench failed (exit $rc):" >&2; cat "$tmp/bench.out" >&2; exit 1
  fi
  python3 - "$tmp/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); f = j["failures"]
print(f["total"], f["connect_refused"], f["connection_reset"], f["closed_before_response"], j["requests"])
PY
}
# The port a log names after "$2" (graceful-run: "listening http=127.0.0.1:", go-http:
# "listening on 127.0.0.1:"): every server starts on port 0, none is picked by bind-close.
port_from_log() {
  for _ in $(seq 200); do
    port=$(sed -n "s/.*$2\([0-9][0-9]*\).*/\1/p" "$1" | head -1)
    [ -n "$port" ] && { url=http://127.0.0.1:$port/; return 0; }
    sleep 0.05
  done
  echo "no port in $1:" >&2; cat "$1" >&2; exit 1
}
wait_port() {
  for _ in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing answers on port $port after 20 s" >&2; exit 1
}
start_run() {  # worker command...
  "$bin/graceful-run" --listen http=127.0.0.1:0 --pid-file "$tmp/run.pid" -- "$@" >"$tmp/worker.out" 2>"$tmp/run.log" &
  echo $! >"$tmp/run.bg.pid"
  port_from_log "$tmp/run.log" 'listening http=127\.0\.0\.1:'
  wait_port
}
stop_run() { kill -TERM "$(cat "$tmp/run.bg.pid")"; wait "$(cat "$tmp/run.bg.pid")" || true; }
# Completed upgrades and ready workers, as graceful-run logged them.
upgrades() { grep -c 'upgrade complete' "$tmp/run.log" || true; }
readies() { grep -cE 'worker [0-9]+ ready \(' "$tmp/run.log" || true; }
# 10 SIGHUPs, each sent once the previous upgrade completed (graceful-run refuses a SIGHUP
# while a worker is not ready yet), then 0.4 s of load on the new worker.
hup10='for i in $(seq 10); do kill -HUP $(cat '"$tmp"'/run.pid); for _ in $(seq 200); do [ "$(grep -c "upgrade complete" '"$tmp"'/run.log)" -ge $i ] && break; sleep 0.05; done; sleep 0.4; done'
# Fails the whole run (after printing every row) when a scenario did fewer restarts than its
# row claims.
expect() {  # WHAT WANT GOT
  if [ "$3" -lt "$2" ]; then echo "$1: $3 of $2 happened" >&2; fail=1; fi
}

printf '| scenario | mode | restarts | requests | failed | refused | reset | closed before response |\n|---|---|---:|---:|---:|---:|---:|---:|\n'
for mode in keepalive close; do
  start_run "$bin/graceful-run-go-worker"
  read -r f r s c n < <(bench $mode "$hup10"); u=$(upgrades); stop_run
  printf '| run+go-worker, 10 SIGHUP | %s | %s | %s | %s | %s | %s | %s |\n' $mode "$u" "$n" "$f" "$r" "$s" "$c"
  expect "run+go-worker $mode upgrades" 10 "$u"

  if [ -x "$bin/graceful-server" ]; then
    start_run "$bin/graceful-server" --listen 127.0.0.1:0
    read -r f r s c n < <(bench $mode "$hup10"); u=$(upgrades); stop_run
    printf '| run+graceful-server, 10 SIGHUP | %s | %s | %s | %s | %s | %s | %s |\n' $mode "$u" "$n" "$f" "$r" "$s" "$c"
    expect "run+graceful-server $mode upgrades" 10 "$u"
  fi

  start_run "$peers/go-http" -listen-fds
  read -r f r s c n < <(bench $mode "$hup10"); u=$(upgrades); stop_run
  printf '| run+go-http, 10 SIGHUP | %s | %s | %s | %s | %s | %s | %s |\n' $mode "$u" "$n" "$f" "$r" "$s" "$c"
  expect "run+go-http $mode upgrades" 10 "$u"

  # Without graceful-run nothing holds the socket: each restart binds the port again (the
  # scenario itself); the first start picks it (port 0).
  "$peers/go-http" -listen 127.0.0.1:0 -pid-file "$tmp/go.pid" 2>"$tmp/go.log" &
  port_from_log "$tmp/go.log" 'listening on 127\.0\.0\.1:'
  wait_port
  : >"$tmp/restarts"
  restart='for i in $(seq 10); do p=$(cat '"$tmp"'/go.pid); kill -TERM $p; while kill -0 $p 2>/dev/null; do sleep 0.01; done; '"$peers"'/go-http -listen 127.0.0.1:'"$port"' -pid-file '"$tmp"'/go.pid 2>>'"$tmp"'/go.log & for _ in $(seq 100); do [ "$(cat '"$tmp"'/go.pid)" != "$p" ] && break; sleep 0.01; done; [ "$(cat '"$tmp"'/go.pid)" != "$p" ] && echo x >>'"$tmp"'/restarts; sleep 0.4; done'
  read -r f r s c n < <(bench $mode "$restart")
  kill -TERM "$(cat "$tmp/go.pid")" 2>/dev/null || true; sleep 0.3
  u=$(wc -l <"$tmp/restarts")
  printf '| go-http alone, 10 stop+start | %s | %s | %s | %s | %s | %s | %s |\n' $mode "$u" "$n" "$f" "$r" "$s" "$c"
  expect "go-http alone $mode restarts" 10 "$u"

  start_run "$bin/graceful-run-go-worker"
  crash='kill -KILL $(sed -n "s/.*worker \([0-9]*\) ready.*/\1/p" '"$tmp"'/run.log | tail -1)'
  read -r f r s c n < <(bench $mode "$crash"); u=$(( $(readies) - 1 )); stop_run
  printf '| run+go-worker, worker SIGKILL | %s | %s | %s | %s | %s | %s | %s |\n' $mode "$u" "$n" "$f" "$r" "$s" "$c"
  expect "run+go-worker $mode restart after SIGKILL" 1 "$u"
done
exit $fail
