#!/usr/bin/env bash
# Plaintext keep-alive throughput (wrk) and memory per idle keep-alive connection, for
# graceful-server, nginx (one worker per core) and a Go net/http server, in the same run.
#
# Usage: bench/throughput.sh [options]
#   --servers LIST     comma-separated: graceful,nginx,go-http (default: all three; a server
#                      whose program is missing is skipped with a note)
#   --threads N        wrk threads, the same for every server (default 2)
#   --connections N    wrk connections (default 64)
#   --duration D       seconds per wrk run (default 5)
#   --runs N           wrk runs per server, interleaved; the median is reported (default 3;
#                      0 skips the throughput part)
#   --idle-conns N     idle keep-alive connections for the RSS measurement (default 10000; 0 skips)
#   --bin-dir DIR      where graceful-server is (default build-release/bin, then build/bin)
#   -h, --help
# Loopback only. Prints a table with the command's parameters, the medians and the ratios
# graceful/nginx and graceful/go. Exit 1 if the harness fails (a server does not start, wrk
# fails), 2 for bad usage.
set -euo pipefail
PROG=throughput.sh
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
servers=graceful,nginx,go-http threads=2 conns=64 duration=5 runs=3 idle=10000
BIN_DIR=$(find_bin_dir)
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) servers=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --connections) conns=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --idle-conns) idle=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "$PROG: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done
for v in "$threads" "$conns" "$duration" "$runs" "$idle"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "$PROG: not a count: $v" >&2; exit 2; }
done
[ "$duration" -ge 1 ] && [ "$conns" -ge "$threads" ] ||
  { echo "$PROG: need --runs >= 1, --duration >= 1, --connections >= --threads" >&2; exit 2; }
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"

bench_init
peers_init
IFS=, read -r -a wanted <<<"$servers"
kinds=()
for k in "${wanted[@]}"; do
  case "$k" in graceful|nginx|go-http) ;; *) echo "$PROG: unknown server $k" >&2; exit 2 ;; esac
  if have_kind "$k"; then kinds+=("$k"); else log "skipping $k: not built/installed"; fi
done
[ ${#kinds[@]} -gt 0 ] || die "no server to measure"

echo "# throughput.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# graceful-server: $BIN_DIR ($(build_type "$BIN_DIR") build); $(nginx -v 2>&1); $(go version | cut -d' ' -f3); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
[ "$runs" -eq 0 ] ||
  echo "# wrk -t$threads -c$conns -d${duration}s http://127.0.0.1:PORT/ ; $runs runs per server, interleaved, median"

if [ "$runs" -gt 0 ]; then
  declare -A port rps
  for k in "${kinds[@]}"; do
    port[$k]=$(free_port)
    start_server "tp-$k" "$k" "${port[$k]}"
    body=$(curl -sS --max-time 5 "http://127.0.0.1:${port[$k]}/") || die "$k: GET / failed"
    [ "$body" = "Hello, World!" ] || log "note: $k answers GET / with '$body' (not the 14-byte body the others send)"
  done

  # One short warm-up each, then the runs interleaved so a burst of noise from the other users
  # of this machine hits every server alike.
  for k in "${kinds[@]}"; do wrk -t"$threads" -c"$conns" -d1s "http://127.0.0.1:${port[$k]}/" >/dev/null; done
  for r in $(seq 1 "$runs"); do
    for k in "${kinds[@]}"; do
      out=$(wrk -t"$threads" -c"$conns" -d"${duration}s" "http://127.0.0.1:${port[$k]}/") ||
        die "wrk failed against $k"
      v=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
      [ -n "$v" ] || die "no Requests/sec in wrk output against $k"
      errs=$(awk '/Socket errors|Non-2xx/' <<<"$out")
      [ -z "$errs" ] || log "$k run $r: $errs"
      rps[$k]+="$v "
      log "$k run $r: $v req/s"
    done
  done

  echo
  echo "| server | req/s (median) | runs |"
  echo "|---|---:|---|"
  declare -A med
  for k in "${kinds[@]}"; do
    med[$k]=$(tr ' ' '\n' <<<"${rps[$k]}" | grep . | median)
    printf '| %s | %.0f | %s|\n' "$k" "${med[$k]}" "${rps[$k]}"
  done
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
  # Paired: the ratio within each round (the servers ran back to back), then the median. The
  # other users of the machine shift the load between rounds; within a round far less.
  paired() {
    local -a a b; local i out=''
    read -r -a a <<<"${rps[$1]}"; read -r -a b <<<"${rps[$2]}"
    for i in "${!a[@]}"; do out+="$(ratio "${a[$i]}" "${b[$i]}") "; done
    echo "median $(tr ' ' '\n' <<<"$out" | grep . | median | awk '{printf "%.2f", $1}') (per round: $out)"
  }
  if [ -n "${med[graceful]:-}" ]; then
    [ -z "${med[nginx]:-}" ] ||
      echo "ratio graceful/nginx: $(ratio "${med[graceful]}" "${med[nginx]}") of medians; paired $(paired graceful nginx)"
    [ -z "${med[go-http]:-}" ] ||
      echo "ratio graceful/go: $(ratio "${med[graceful]}" "${med[go-http]}") of medians; paired $(paired graceful go-http)"
  fi
  stop_all_servers
fi

[ "$idle" -gt 0 ] || exit 0

# Memory: a fresh server, one request so lazy start-up allocations are done, its RSS; then
# $idle keep-alive connections that each served one request, and the RSS again.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $(( idle + 100 )) ] || die "ulimit -n $(ulimit -n) is too low for $idle connections"
echo
echo "# RSS with $idle idle keep-alive connections (each served one GET /): idle-conns -n $idle"
echo "| server | RSS before (KiB) | RSS with $idle conns (KiB) | per connection (bytes) | still open at the end |"
echo "|---|---:|---:|---:|---:|"
for k in "${kinds[@]}"; do
  p=$(free_port)
  start_server "rss-$k" "$k" "$p"
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
  echo "| $k | $before | $after | $per | ${still:-?} of ${opened} |"
  stop_all_servers
done
