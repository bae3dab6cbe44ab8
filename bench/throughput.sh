#!/usr/bin/env bash
# Plaintext throughput (wrk, keep-alive and Connection: close, at each worker count) and memory
# per idle keep-alive connection, for graceful-server, nginx, a Go net/http server and the floor
# (bench/peers/floor: one epoll thread per worker, a fixed response, no parser), in one run.
#
# Usage: bench/throughput.sh [options]
#   --servers LIST     comma-separated: floor,graceful,nginx,go-http (default: all four; a server
#                      whose program is missing is skipped with a note)
#   --workers LIST     worker counts to measure, each server at the same count: graceful-server
#                      --threads N, nginx worker_processes N, Go GOMAXPROCS=N, floor -workers N
#                      (default 1,2)
#   --modes LIST       keepalive,close (default both; close = wrk -H 'Connection: close', a new
#                      connection per request)
#   --threads N        wrk threads, the same for every server (default 1)
#   --connections N    wrk connections (default 64)
#   --duration D       seconds per wrk round (default 3)
#   --runs N           rounds per cell (>= 5 for the acceptance table); in each round every
#                      server runs once, the order reversed every other round (default 5; 0
#                      skips the throughput part)
#   --idle-conns LIST  idle keep-alive connection counts for the RSS measurement, comma-separated
#                      (default 5000,10000; 0 skips)
#   --bin-dir DIR      where graceful-server is (default build-release/bin, then build/bin)
#   --baseline DIR     also measure the graceful-server in DIR (another build, e.g. before a
#                      change) as server "graceful-base", in the same rounds as the others
#   -h, --help
# Per cell (workers x mode) and server: req/s (median of the rounds), x nginx and x floor (the
# median of the per-round ratios: the servers of one round ran back to back, so a burst of load
# from the machine's other users hits them alike), the lowest and highest per-round ratio to
# nginx (the run's noise, beside the median), p50/p99 latency (median of the rounds' wrk
# percentiles), CPU per request (user+system ticks of the server's processes from /proc/PID/stat
# over the round, divided by the round's requests), and per round the busiest thread's share of
# the server's CPU beside that round's p99 (at 2 workers, 50% is an even split and ~100% one
# worker serving every connection: on 2 cores with wrk on one of them, that decides p99, so a
# median p99 over rounds of both kinds is read with this column). Loopback only. Exit 1 if
# the harness fails (a server does not start, wrk fails), 2 for bad usage.
set -euo pipefail
PROG=throughput.sh
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
servers=floor,graceful,nginx,go-http workers_list=1,2 modes=keepalive,close
threads=1 conns=64 duration=3 runs=5 idle=5000,10000
all_args="$*"
BIN_DIR=$(find_bin_dir)
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) servers=${2:?}; shift 2 ;;
    --workers) workers_list=${2:?}; shift 2 ;;
    --modes) modes=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --connections) conns=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --idle-conns) idle=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    --baseline) BASE_DIR=${2:?}; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "$PROG: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done
IFS=, read -r -a idle_counts <<<"$idle"
for v in "$threads" "$conns" "$duration" "$runs" "${idle_counts[@]}"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "$PROG: not a count: $v" >&2; exit 2; }
done
[ "$duration" -ge 1 ] && [ "$conns" -ge "$threads" ] && [ "$threads" -ge 1 ] ||
  { echo "$PROG: need --duration >= 1, --threads >= 1, --connections >= --threads" >&2; exit 2; }
IFS=, read -r -a worker_counts <<<"$workers_list"
for w in "${worker_counts[@]}"; do
  [[ "$w" =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --workers: not a count: $w" >&2; exit 2; }
done
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  case "$m" in keepalive|close) ;; *) echo "$PROG: --modes: unknown mode $m" >&2; exit 2 ;; esac
done
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"

bench_init
peers_init
IFS=, read -r -a wanted <<<"$servers"
if [ -n "${BASE_DIR:-}" ]; then
  [ -x "$BASE_DIR/graceful-server" ] || { echo "$PROG: --baseline: no graceful-server in $BASE_DIR" >&2; exit 2; }
  wanted+=(graceful-base)
fi
kinds=()
for k in "${wanted[@]}"; do
  case "$k" in floor|graceful|nginx|go-http|graceful-base) ;; *) echo "$PROG: unknown server $k" >&2; exit 2 ;; esac
  if [ "$k" = graceful-base ] || have_kind "$k"; then kinds+=("$k"); else log "skipping $k: not built/installed"; fi
done
[ ${#kinds[@]} -gt 0 ] || die "no server to measure"
clk_tck=$(getconf CLK_TCK)

[ -n "${BIN_DIR:-}" ] && all_args=${all_args//"$BIN_DIR"/$(shown_path "$BIN_DIR")}
[ -n "${BASE_DIR:-}" ] && all_args=${all_args//"$BASE_DIR"/$(shown_path "$BASE_DIR")}
echo "# throughput.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): $PROG $all_args"
echo "# machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# graceful-server: $(shown_path "$BIN_DIR") ($(build_type "$BIN_DIR") build); $(nginx -v 2>&1); $(go version | cut -d' ' -f3); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
[ -z "${BASE_DIR:-}" ] || echo "# graceful-base: $(shown_path "$BASE_DIR") ($(build_type "$BASE_DIR") build)"
[ "$runs" -eq 0 ] ||
  echo "# wrk -t$threads -c$conns -d${duration}s --latency [-H 'Connection: close'] http://127.0.0.1:PORT/ ; $runs alternating rounds per cell"

# start_kind KIND WORKERS MODE NAME PORT: starts a server at WORKERS workers.
start_kind() {
  local kind=$1 w=$2 mode=$3 name=$4 port=$5
  case "$kind" in
    graceful) GRACEFUL_SERVER_ARGS="--threads $w" start_server "$name" graceful "$port" ;;
    graceful-base) BIN_DIR=$BASE_DIR GRACEFUL_SERVER_ARGS="--threads $w" start_server "$name" graceful "$port" ;;
    nginx) NGINX_WORKERS=$w start_server "$name" nginx "$port" ;;
    go-http) export GOMAXPROCS=$w; start_server "$name" go-http "$port"; unset GOMAXPROCS ;;
    floor) FLOOR_WORKERS=$w FLOOR_CLOSE=$([ "$mode" = close ] && echo 1 || echo 0) \
             start_server "$name" floor "$port" ;;
  esac
}
# to_ms VALUE: a wrk latency (12.5us, 3.2ms, 1.01s) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "nan"}'; }
med() { tr ' ' '\n' <<<"$1" | grep . | median; }
# ratios A B: the per-round ratios of two space-separated lists (round i of A over round i of B).
ratios() {
  local -a a b; local i out=''
  read -r -a a <<<"$1"; read -r -a b <<<"$2"
  for i in "${!a[@]}"; do out+="$(ratio "${a[$i]}" "${b[$i]:-0}") "; done
  echo "$out"
}
# paired RATIOS: the median of a list of per-round ratios.
paired() { med "$1" | awk '{printf "%.2f", $1}'; }
# spread RATIOS: the lowest and the highest of them, "0.93-1.08": a median ratio whose spread
# straddles 1.00 is parity within this run's noise, not a lead or a lag.
spread() { tr ' ' '\n' <<<"$1" | grep . | sort -g | sed -n '1p;$p' | paste -sd- -; }

if [ "$runs" -gt 0 ]; then
  table=()
  for w in "${worker_counts[@]}"; do
    for mode in "${mode_list[@]}"; do
      declare -A port=() rps=() p50=() p99=() cpu=() group=() share=()
      hdr=()
      [ "$mode" = close ] && hdr=(-H 'Connection: close')
      for k in "${kinds[@]}"; do
        port[$k]=$(free_port)
        start_kind "$k" "$w" "$mode" "tp-$k-$w-$mode" "${port[$k]}"
        group[$k]=$SERVER_PID
        body=$(curl -sS --max-time 5 "http://127.0.0.1:${port[$k]}/") || die "$k: GET / failed"
        [ "$body" = "Hello, World!" ] || log "note: $k answers GET / with '$body' (not the 14-byte body the others send)"
        wrk -t"$threads" -c"$conns" -d1s "${hdr[@]}" "http://127.0.0.1:${port[$k]}/" >/dev/null  # warm-up
      done
      log "cell: $w workers, $mode; load avg $(cut -d' ' -f1-3 /proc/loadavg)"
      for r in $(seq 1 "$runs"); do
        order=("${kinds[@]}")
        if [ $(( r % 2 )) -eq 0 ]; then
          order=(); for (( i=${#kinds[@]}-1; i>=0; i-- )); do order+=("${kinds[$i]}"); done
        fi
        for k in "${order[@]}"; do
          c0=$(cpu_ticks "${group[$k]}"); t0=$(task_ticks "${group[$k]}")
          out=$(wrk -t"$threads" -c"$conns" -d"${duration}s" --latency "${hdr[@]}" "http://127.0.0.1:${port[$k]}/") ||
            die "wrk failed against $k"
          c1=$(cpu_ticks "${group[$k]}"); t1=$(task_ticks "${group[$k]}")
          v=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
          n=$(awk '/requests in/ {print $1}' <<<"$out")
          [ -n "$v" ] && [ -n "$n" ] || die "no Requests/sec in wrk output against $k"
          errs=$(awk '/Socket errors|Non-2xx/' <<<"$out")
          [ -z "$errs" ] || log "$k $w/$mode round $r: $errs"
          rps[$k]+="$v "
          p50[$k]+="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")") "
          tail=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
          busiest=$(busiest_share "$t0" "$t1")
          p99[$k]+="$tail "
          cpu[$k]+="$(awk -v t=$(( c1 - c0 )) -v hz="$clk_tck" -v n="$n" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}') "
          share[$k]+="$busiest% "
          log "$k $w workers $mode round $r: $v req/s, p99 $tail ms, busiest thread $busiest% of the CPU"
        done
      done
      for k in "${kinds[@]}"; do
        xn=-; xf=-; xr=-
        if [ -n "${rps[nginx]:-}" ]; then
          r=$(ratios "${rps[$k]}" "${rps[nginx]}"); xn=$(paired "$r"); xr=$(spread "$r")
        fi
        [ -n "${rps[floor]:-}" ] && xf=$(paired "$(ratios "${rps[$k]}" "${rps[floor]}")")
        table+=("$(printf '| %s | %s | %s | %.0f | %s | %s | %s | %.2f | %.2f | %.1f | %s| %s| %s|' "$w" "$mode" "$k" \
          "$(med "${rps[$k]}")" "$xn" "$xr" "$xf" "$(med "${p50[$k]}")" "$(med "${p99[$k]}")" \
          "$(med "${cpu[$k]}")" "${rps[$k]}" "${p99[$k]}" "${share[$k]}")")
      done
      unset port rps p50 p99 cpu group share
      stop_all_servers
    done
  done
  echo "# load avg at the end of the throughput part: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| workers | mode | server | req/s (median) | x nginx | x nginx, lowest-highest round | x floor | p50 ms | p99 ms | CPU us/req | req/s per round | p99 ms per round | busiest thread's CPU share per round |"
  echo "|---:|---|---|---:|---:|---|---:|---:|---:|---:|---|---|---|"
  printf '%s\n' "${table[@]}"
fi

[ "${idle_counts[0]}" -gt 0 ] || exit 0

# Memory: a fresh server (workers: one per core), one request so lazy start-up allocations are
# done, its RSS; then N keep-alive connections that each served one request, and the RSS again.
max_idle=$(printf '%s\n' "${idle_counts[@]}" | sort -n | tail -1)
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $(( max_idle + 100 )) ] || die "ulimit -n $(ulimit -n) is too low for $max_idle connections"
echo
echo "# RSS with N idle keep-alive connections (each served one GET /): idle-conns -n N; load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| server | idle conns | RSS before (KiB) | RSS with the conns (KiB) | per connection (bytes) | still open at the end |"
echo "|---|---:|---:|---:|---:|---:|"
for idle in "${idle_counts[@]}"; do
for k in "${kinds[@]}"; do
  p=$(free_port)
  start_kind "$k" "$(nproc)" keepalive "rss-$k" "$p"
  g=$SERVER_PID
  curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$p/" || die "$k: GET / failed"
  sleep 0.5
  before=$(rss_kb "$g")
  fifo="$STATE/idle-$k.out"; : >"$fifo"
  "$PEERS/idle-conns" -addr "127.0.0.1:$p" -n "$idle" -hold 60s >"$fifo" 2>"$STATE/idle-$k.err" &
  opener=$!
  end=$(( $(now_ns) + 60000000000 ))
  until grep -q '^open' "$fifo"; do
    alive "$opener" || break
    [ "$(now_ns)" -lt "$end" ] || { kill "$opener"; die "$k: opening $idle connections took over 60 s"; }
    sleep 0.1
  done
  sleep 1
  after=$(rss_kb "$g")
  kill -TERM "$opener" 2>/dev/null || true
  wait "$opener" || log "$k: idle-conns: $(cat "$STATE/idle-$k.err")"
  opened=$(awk '/^open/ {print $2}' "$fifo"); still=$(awk '/^still-open/ {print $2}' "$fifo")
  [ "${opened:-0}" -gt 0 ] || die "$k: no connection opened ($(cat "$STATE/idle-$k.err"))"
  per=$(awk -v a="$after" -v b="$before" -v n="$opened" 'BEGIN {printf "%.0f", (a-b)*1024/n}')
  echo "| $k | $idle | $before | $after | $per | ${still:-?} of ${opened} |"
  stop_all_servers
done
done
