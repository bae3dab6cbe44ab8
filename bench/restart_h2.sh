#!/usr/bin/env bash
# HTTP/2 restart scenarios under load (issue 16): failed streams, p99 around the restart and
# reconnects, measured by graceful-bench --h2 (h2c prior knowledge; a stream the server did not
# process is retried and counted as a retry, every other loss as a failure). Also run as
# `bench/restart.sh --h2 [options]`; a file of its own so HTTP/1.1 and HTTP/2 can change apart.
#
# Usage: bench/restart_h2.sh [--runs N] [--connections C] [--streams M] [--duration S] [--at S]
#                            [--scenarios LIST] [--bin-dir DIR]
#   scenarios (default all):
#     graceful-upgrade  graceful-server, SIGHUP upgrade (two-phase GOAWAY)
#     nginx-reload      nginx `listen ... http2` (h2c), nginx -s reload
#     nginx-upgrade     the same nginx, binary upgrade (USR2, then QUIT to the old master)
#     go-shutdown       go-h2c-server (x/net/http2 h2c), SIGTERM (Server.Shutdown) + start again
# Loopback only; every server is started fresh per run and stopped after it. Prints one line per
# run and a median summary per scenario. Exit 1 if the harness fails, 2 for bad usage.
set -euo pipefail
PROG=restart_h2.sh
runs=3 conns=16 streams=8 duration=5 at=2 scenarios=graceful-upgrade,nginx-reload,nginx-upgrade,go-shutdown
here=$(cd "$(dirname "$0")" && pwd)
BIN_DIR=$here/../build/bin
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=${2:?}; shift 2 ;;
    --connections) conns=${2:?}; shift 2 ;;
    --streams) streams=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --at) at=${2:?}; shift 2 ;;
    --scenarios) scenarios=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$PROG: unknown argument $1" >&2; exit 2 ;;
  esac
done
for v in "$runs" "$conns" "$streams" "$duration" "$at"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "$PROG: not a whole number: $v" >&2; exit 2; }
done
[ "$duration" -gt $(( at + 1 )) ] || { echo "$PROG: need --at < --duration - 1" >&2; exit 2; }
command -v jq >/dev/null || { echo "$PROG: needs jq" >&2; exit 2; }
[ -x "$BIN_DIR/graceful-bench" ] && [ -x "$BIN_DIR/graceful-server" ] ||
  { echo "$PROG: build graceful-server and graceful-bench first ($BIN_DIR)" >&2; exit 2; }
BIN_DIR=$(cd "$BIN_DIR" && pwd)
die() { echo "$PROG: $*" >&2; exit 1; }
STATE=$(mktemp -d /tmp/restart_h2.XXXXXX)
trap 'stop_server; rm -rf "$STATE"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_h2() {  # wait until an HTTP/2 request on port $1 is answered (5 s)
  for _ in $(seq 500); do
    curl -s --http2-prior-knowledge --max-time 1 -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.01
  done
  return 1
}
stop_server() {
  [ -f "$STATE/pids" ] || return 0
  while read -r p; do kill -9 -- "-$p" 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done <"$STATE/pids"
  rm -f "$STATE/pids"
  [ -f "$STATE/nginx/nginx.pid" ] && kill -9 "$(cat "$STATE/nginx/nginx.pid")" 2>/dev/null || true
  pkill -9 -F "$STATE/nginx/nginx.pid.oldbin" 2>/dev/null || true
  return 0
}

# start SCENARIO PORT: starts the server; writes the action command to $STATE/action.
start() {
  local scen=$1 port=$2
  case "$scen" in
    graceful-upgrade)
      mkdir -p "$STATE/gs" && cp "$BIN_DIR/graceful-server" "$STATE/gs/"
      setsid "$STATE/gs/graceful-server" --listen "127.0.0.1:$port" --threads 2 --pid-file "$STATE/gs/pid" \
        </dev/null >>"$STATE/server.log" 2>&1 &
      echo $! >>"$STATE/pids"
      echo "kill -HUP \$(cat $STATE/gs/pid)" >"$STATE/action" ;;
    nginx-reload|nginx-upgrade)
      local p=$STATE/nginx; mkdir -p "$p/tmp" "$p/logs"
      cat >"$p/nginx.conf" <<EOF
worker_processes 2;
daemon on;
pid $p/nginx.pid;
error_log $p/error.log notice;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $p/tmp; proxy_temp_path $p/tmp; fastcgi_temp_path $p/tmp;
  uwsgi_temp_path $p/tmp; scgi_temp_path $p/tmp;
  server {
    listen 127.0.0.1:$port http2;
    location = / { default_type text/plain; return 200 "Hello, World!\n"; }
  }
}
EOF
      nginx -p "$p" -c "$p/nginx.conf" -e "$p/error.log" 2>>"$STATE/server.log" || die "nginx did not start"
      if [ "$scen" = nginx-reload ]; then
        echo "nginx -p $p -c $p/nginx.conf -e $p/error.log -s reload" >"$STATE/action"
      else
        # Binary upgrade: USR2 starts a new master beside the old; QUIT then stops the old one.
        echo "kill -USR2 \$(cat $p/nginx.pid); for i in \$(seq 200); do [ -f $p/nginx.pid.oldbin ] && break; sleep 0.01; done; sleep 0.2; kill -QUIT \$(cat $p/nginx.pid.oldbin)" >"$STATE/action"
      fi ;;
    go-shutdown)
      [ -x "$BIN_DIR/go-h2c-server" ] || return 3
      cat >"$STATE/go-start.sh" <<EOF
setsid $BIN_DIR/go-h2c-server -listen 127.0.0.1:$port </dev/null >>$STATE/server.log 2>&1 &
echo \$! >$STATE/go.pid
echo \$! >>$STATE/pids
EOF
      bash "$STATE/go-start.sh"
      # Shutdown, wait for the exit, start again (the gap refuses connections).
      echo "p=\$(cat $STATE/go.pid); kill -TERM \$p; while kill -0 \$p 2>/dev/null; do sleep 0.005; done; bash $STATE/go-start.sh" >"$STATE/action" ;;
  esac
  wait_h2 "$port" || die "$scen: server on $port does not answer HTTP/2: $(tail -n 3 "$STATE/server.log")"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "?"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo "# restart_h2.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores, load avg $(cut -d' ' -f1-3 /proc/loadavg); $(nginx -v 2>&1); h2load/nghttp2 $(pkg-config --modversion libnghttp2 2>/dev/null)"
echo "# load: graceful-bench --h2 -c $conns -m $streams -d ${duration}s --at ${at}s --exec ACTION --json F; $runs runs each"
printf '%-18s %4s %8s %8s %10s %10s %8s  %s\n' scenario run failed retried p99_ms requests reconn kinds
IFS=, read -r -a scen_list <<<"$scenarios"
for scen in "${scen_list[@]}"; do
  : >"$STATE/rows"
  for run in $(seq "$runs"); do
    port=$(free_port)
    rc=0; start "$scen" "$port" || rc=$?
    if [ "$rc" = 3 ]; then echo "# $scen: skipped (program missing)"; break; fi
    json=$STATE/run.json; rm -f "$json"
    rc=0
    timeout $(( duration + 30 )) "$BIN_DIR/graceful-bench" --h2 -c "$conns" -m "$streams" -d "${duration}s" \
      --at "${at}s" --exec "bash -c '$(cat "$STATE/action")'" --json "$json" "http://127.0.0.1:$port/" \
      >"$STATE/run.out" 2>&1 || rc=$?
    [ "$rc" -le 1 ] || { tail -n 20 "$STATE/run.out" >&2; die "$scen run $run: graceful-bench exited $rc"; }
    failed=$(jq -r '.failures.total' "$json"); retried=$(jq -r '.connections.retried_streams' "$json")
    p99=$(jq -r '.action.window.latency_ms.p99' "$json"); requests=$(jq -r '.requests' "$json")
    reconn=$(jq -r '.connections.reconnects.total' "$json")
    kinds=$(jq -r '[.failures | to_entries[] | select(.key != "total" and .value > 0) | "\(.key)=\(.value)"] | join(",")' "$json")
    printf '%-18s %4s %8s %8s %10s %10s %8s  %s\n' "$scen" "$run" "$failed" "$retried" "$p99" "$requests" "$reconn" "${kinds:-none}"
    echo "$failed $retried $p99 $reconn" >>"$STATE/rows"
    stop_server
    sleep 0.2
  done
  [ -s "$STATE/rows" ] && printf '%-18s %4s %8s %8s %10s %10s %8s\n' "$scen" median \
    "$(cut -d' ' -f1 "$STATE/rows" | median)" "$(cut -d' ' -f2 "$STATE/rows" | median)" \
    "$(cut -d' ' -f3 "$STATE/rows" | median)" - "$(cut -d' ' -f4 "$STATE/rows" | median)"
done
