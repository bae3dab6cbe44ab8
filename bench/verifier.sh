#!/usr/bin/env bash
# graceful-bench against wrk: the tables of bench/graceful-bench.md. Can graceful-bench drive
# as many requests per second as wrk with the same connections, at the same CPU cost per
# request, so that it is never the bottleneck of a restart measurement?
#
# Usage: bench/verifier.sh [options]
#   --servers LIST     peers of bench/peers/ to load (default nginx,go-http)
#   --runs N           rounds per server (default 3); each round runs wrk, then graceful-bench
#   --connections N    concurrent connections (default 64)
#   --duration S       seconds per tool per round (default 5)
#   --bin-dir DIR      graceful-bench (default build-release/bin, then build/bin)
#   -h, --help
# Per round: `wrk -t2 -cN -dSs URL` and `graceful-bench URL -cN -dSs --json F` (two threads
# each: one per core here), 1 s apart, each under bash's `time` for its CPU (user + system).
# Prints a markdown table per server (req/s and CPU µs per request of each tool, their ratio)
# and the median ratio. Loopback only; the server is stopped afterwards. Exit 1 if a tool or
# the server fails, 2 for bad usage.
set -euo pipefail
PROG=verifier.sh
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
servers=nginx,go-http runs=3 conns=64 duration=5
BIN_DIR=$(find_bin_dir)
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) servers=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --connections) conns=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "$PROG: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done
for v in "$runs" "$conns" "$duration"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: not a positive whole number: $v" >&2; exit 2; }
done
IFS=, read -r -a server_list <<<"$servers"
for s in "${server_list[@]}"; do
  case "$s" in nginx|go-http) ;; *) echo "$PROG: unknown server $s (nginx, go-http)" >&2; exit 2 ;; esac
done
[ -x "$BIN_DIR/graceful-bench" ] || { echo "$PROG: no graceful-bench in $BIN_DIR" >&2; exit 2; }
command -v wrk >/dev/null || { echo "$PROG: wrk not installed" >&2; exit 2; }

bench_init
peers_init

# cpu_of FILE: "user sys" seconds written by bash's time (TIMEFORMAT='%U %S') -> total seconds.
cpu_of() { awk '{print $1 + $2}' "$1"; }
# us_per_request CPU_S REQUESTS
us_per_request() { awk -v c="$1" -v r="$2" 'BEGIN { if (r > 0) printf "%.2f", c * 1e6 / r; else print "-" }'; }

echo "# verifier.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# graceful-bench: $BIN_DIR ($(build_type "$BIN_DIR") build); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(nginx -v 2>&1); $(go version | cut -d' ' -f3)"
echo "# per round: wrk -t2 -c$conns -d${duration}s URL, then graceful-bench URL -c$conns -d${duration}s --json F (2 threads), CPU from bash's time"
TIMEFORMAT='%U %S'
for server in "${server_list[@]}"; do
  have_kind "$server" || { echo; echo "$server: skipped (not built/installed)"; continue; }
  port=$(free_port)
  start_server "verify-$server" "$server" "$port"
  url="http://127.0.0.1:$port/"
  echo
  echo "$server (load avg at start $(cut -d' ' -f1 /proc/loadavg))"
  echo
  echo "| round | wrk req/s | wrk CPU µs/request | graceful-bench req/s | graceful-bench CPU µs/request | ratio (graceful-bench / wrk req/s) |"
  echo "|---|---:|---:|---:|---:|---:|"
  ratios=''
  for round in $(seq 1 "$runs"); do
    { time wrk -t2 -c"$conns" -d"${duration}s" "$url" >"$STATE/wrk.out" 2>&1; } 2>"$STATE/wrk.time" ||
      { cat "$STATE/wrk.out" >&2; die "wrk failed against $server"; }
    w_rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$STATE/wrk.out")
    w_req=$(awk '/requests in/ {print $1}' "$STATE/wrk.out")
    sleep 1
    rc=0
    { time "$BIN_DIR/graceful-bench" "$url" -c "$conns" -d "${duration}s" --json "$STATE/gb.json" >"$STATE/gb.out" 2>&1; } \
      2>"$STATE/gb.time" || rc=$?
    # 1 = some requests failed: a result worth seeing, not a harness failure.
    [ "$rc" -le 1 ] || { cat "$STATE/gb.out" >&2; die "graceful-bench exited $rc against $server"; }
    g_rps=$(jq -r '.rps | floor' "$STATE/gb.json")
    g_req=$(jq -r '.requests' "$STATE/gb.json")
    g_failed=$(jq -r '.failures.total' "$STATE/gb.json")
    ratio=$(awk -v g="$g_rps" -v w="$w_rps" 'BEGIN { printf "%.2f", g / w }')
    ratios+="$ratio"$'\n'
    note=''
    [ "$g_failed" = 0 ] || note=" ($g_failed failed)"
    echo "| $round | $w_rps | $(us_per_request "$(cpu_of "$STATE/wrk.time")" "$w_req") | $g_rps$note | $(us_per_request "$(cpu_of "$STATE/gb.time")" "$g_req") | $ratio |"
    sleep 1
  done
  echo
  echo "median ratio against $server: $(printf '%s' "$ratios" | median) (load avg at end $(cut -d' ' -f1 /proc/loadavg))"
  stop_all_servers
done
