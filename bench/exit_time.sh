#!/usr/bin/env bash
# Time from the stop signal to process exit, for graceful-server, the Go net/http server and
# nginx, in three situations:
#   idle       no connection open
#   keepalive  one idle keep-alive connection open (it has served one request)
#   inflight   one GET /slow?ms=2000 in flight, sent 200 ms before the signal
# Each row also says whether the in-flight request got its 200 (a fast exit that cuts the
# request is not a graceful one). A second table times the exit from the moment the client has
# read its last response (issue 13 item 4), for a client that then misbehaves:
#   keepopen   GET /slow?ms=300 in flight at the signal; the client reads the answer and keeps
#              its socket open (idle-conns -keep-open)
#   pipelined  the same, and after the server's FIN the client sends another request
#              (idle-conns -keep-open -pipeline-after-fin)
# with the RSTs those clients received (0 expected: the response was read, but a RST after a
# request is what a client that had not read yet would lose its response to).
#
# Usage: bench/exit_time.sh [--runs N] [--servers LIST] [--bin-dir DIR] [--baseline DIR]
#   --servers  graceful,go-http,nginx (default all; nginx is measured with QUIT, its graceful
#              stop, and with TERM, its fast stop). nginx has no sleep of its own, so its /slow
#              is proxied to a go-http upstream.
#   --runs N   runs per cell, the median is reported (default 3); run r of a case is taken
#              for every server before run r+1, so a burst of load hits them alike
#   --baseline DIR  also measure the graceful-server in DIR (e.g. a build before a change) as
#              row "graceful-base", in the same rounds
# Exit times are polled from /proc every ~1 ms. Exit 1 on harness failure, 2 for bad usage.
set -euo pipefail
PROG=exit_time.sh
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
servers=graceful,go-http,nginx runs=3
BIN_DIR=$(find_bin_dir)
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) servers=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    --baseline) BASE_DIR=${2:?}; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "$PROG: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ ]] && [ "$runs" -ge 1 ] || { echo "$PROG: --runs needs a count >= 1" >&2; exit 2; }

bench_init
peers_init
# A 1 ms sleep without a fork (read -t on a pipe nothing writes to), for the exit polls.
exec {nap_fd}<> <(:)
nap() { read -r -t "$1" -u "$nap_fd" _ || true; }
IFS=, read -r -a wanted <<<"$servers"
rows=()
for k in "${wanted[@]}"; do
  case "$k" in
    graceful) rows+=("graceful TERM") ;;
    go-http) rows+=("go-http TERM") ;;
    nginx) rows+=("nginx QUIT" "nginx TERM") ;;
    *) echo "$PROG: unknown server $k" >&2; exit 2 ;;
  esac
done
if [ -n "${BASE_DIR:-}" ]; then
  [ -x "$BASE_DIR/graceful-server" ] || { echo "$PROG: --baseline: no graceful-server in $BASE_DIR" >&2; exit 2; }
  rows+=("graceful-base TERM")
fi

# nginx's /slow upstream: one go-http for the whole run, outside the measured process group.
if [[ ",$servers," == *,nginx,* ]]; then
  NGINX_SLOW_PORT=$(free_port)
  start_server upstream go-http "$NGINX_SLOW_PORT"
  upstream_group=$SERVER_PID
fi

# one_run KIND SIGNAL CASE: prints "milliseconds http_status_of_the_inflight_request".
one_run() {
  local kind=$1 sig=$2 case=$3 port pid holder='' curl_pid='' code=-
  port=$(free_port)
  if [ "$kind" = graceful-base ]; then BIN_DIR=$BASE_DIR start_server "exit-$kind" graceful "$port"
  else start_server "exit-$kind" "$kind" "$port"; fi
  pid=$(current_pid "exit-$kind")
  case "$case" in
    keepalive)
      : >"$STATE/holder.out"
      "$PEERS/idle-conns" -addr "127.0.0.1:$port" -n 1 -hold 30s >"$STATE/holder.out" 2>&1 &
      holder=$!
      local end=$(( $(now_ns) + 5000000000 ))
      until grep -q '^open 1' "$STATE/holder.out"; do
        [ "$(now_ns)" -lt "$end" ] || die "$kind: keep-alive connection not opened"; sleep 0.01
      done ;;
    keepopen|pipelined)
      local -a flags=(-keep-open)
      [ "$case" = pipelined ] && flags+=(-pipeline-after-fin)
      : >"$STATE/holder.out"
      "$PEERS/idle-conns" -addr "127.0.0.1:$port" -n 1 -path '/slow?ms=300' -hold 30s "${flags[@]}" \
        >"$STATE/holder.out" 2>&1 &
      holder=$!
      # The request must be in flight at the signal: wait for the connection (a fixed sleep
      # from the client's start lost the race on a loaded machine), then give the request
      # 100 ms to reach the handler, well inside its 300 ms.
      local end=$(( $(now_ns) + 5000000000 ))
      until [ -n "$(ss -Htn state established "( sport = :$port )" 2>/dev/null)" ]; do
        [ "$(now_ns)" -lt "$end" ] || die "$kind: the client did not connect"; nap 0.002
      done
      sleep 0.1 ;;
    inflight)
      curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/slow?ms=2000" \
        >"$STATE/curl.out" 2>/dev/null &
      curl_pid=$!
      sleep 0.2 ;;
  esac
  local t0 t1
  t0=$(now_ns)
  kill "-$sig" "$pid"
  while alive "$pid"; do
    [ $(( $(now_ns) - t0 )) -lt 30000000000 ] || die "$kind still running 30 s after SIG$sig"
    nap 0.001
  done
  t1=$(now_ns)
  if [ -n "$curl_pid" ]; then wait "$curl_pid" || true; code=$(cat "$STATE/curl.out"); fi
  if [ -n "$holder" ]; then
    # The client prints once it has read its response (or failed): on a loaded machine that
    # can come after the server's exit, and killing it before would lose the reading.
    local end=$(( $(now_ns) + 3000000000 ))
    until grep -q '^open \|connections failed' "$STATE/holder.out" || [ "$(now_ns)" -ge "$end" ]; do nap 0.005; done
    # The pipelined request goes out once the client sees the FIN: give it that moment.
    [ "$case" = pipelined ] && sleep 0.1
    kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true
  fi
  # Stop what is left of this server (nginx workers finishing), not the nginx upstream.
  local g
  for g in $(sort -u "$STATE/groups"); do
    [ "$g" = "${upstream_group:-}" ] && continue
    kill -KILL -- "-$g" 2>/dev/null || true
  done
  grep -x "${upstream_group:-none}" "$STATE/groups" >"$STATE/groups.keep" || true
  mv "$STATE/groups.keep" "$STATE/groups"
  case "$case" in
    keepopen|pipelined)
      # ms from the client's read of the response to the exit; the RSTs it got.
      local answered resets
      answered=$(awk '/^answered-at-ns/ {print $2}' "$STATE/holder.out")
      resets=$(awk '/^reset/ {print $2}' "$STATE/holder.out")
      if [ -z "$answered" ] || [ "$answered" = 0 ]; then
        log "$kind $case: no response read: $(tr '\n' ' ' <"$STATE/holder.out")"
        echo "cut ${resets:-?}"
      else
        awk -v a="$answered" -v b="$t1" 'BEGIN {printf "%.1f", (b-a)/1e6}'; echo " ${resets:-?}"
      fi ;;
    *) awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", (b-a)/1e6}'; echo " $code" ;;
  esac
}

echo "# exit_time.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores, load avg $(cut -d' ' -f1-3 /proc/loadavg); graceful: $(shown_path "$BIN_DIR") ($(build_type "$BIN_DIR") build); $(nginx -v 2>&1); $(go version | cut -d' ' -f3)"
[ -z "${BASE_DIR:-}" ] || echo "# graceful-base: $(shown_path "$BASE_DIR") ($(build_type "$BASE_DIR") build)"
avail=()
for row in "${rows[@]}"; do
  read -r kind sig <<<"$row"
  if [ "$kind" = graceful-base ] || have_kind "$kind"; then avail+=("$row"); fi
done

# measure CASE...: run r of each case for every available row, then run r+1; fills T[row,case]
# (the times, space-separated) and X[row,case] (in-flight codes, or RSTs and cuts).
declare -A T X
measure() {
  local case r row kind sig t x
  for case in "$@"; do
    for r in $(seq 1 "$runs"); do
      for row in "${avail[@]}"; do
        read -r kind sig <<<"$row"
        read -r t x <<<"$(one_run "$kind" "$sig" "$case")"
        [ -n "$t" ] || exit 1
        T[$row,$case]+="$t "
        X[$row,$case]+="$x "
        case "$case" in
          keepopen|pipelined) log "$kind SIG$sig $case run $r: exit ${t} ms after the response, RSTs: $x" ;;
          *) log "$kind SIG$sig $case run $r: ${t} ms, in-flight request: $x" ;;
        esac
      done
    done
  done
}

measure idle keepalive inflight
echo "# ms from the signal to the exit of the (master) process, median of $runs runs; inflight = GET /slow?ms=2000 sent 200 ms before the signal"
echo
echo "| server | signal | idle (ms) | one idle keep-alive conn (ms) | 2 s request in flight (ms) | in-flight request got |"
echo "|---|---|---:|---:|---:|---|"
for row in "${rows[@]}"; do
  read -r kind sig <<<"$row"
  if [ "$kind" != graceful-base ] && ! have_kind "$kind"; then echo "| $kind | SIG$sig | skipped: not built | | | |"; continue; fi
  line="| $kind | SIG$sig |"
  for case in idle keepalive inflight; do
    line+=" $(tr ' ' '\n' <<<"${T[$row,$case]}" | grep . | median) |"
  done
  echo "$line $(tr ' ' '\n' <<<"${X[$row,inflight]}" | grep . | sort | uniq -c | awk '{printf "%s%s x%s", (NR>1?", ":""), ($2=="000"?"failed":$2), $1}') |"
done

measure keepopen pipelined
echo
echo "# ms from the client having read its last response (GET /slow?ms=300 in flight at the signal) to the exit, median of $runs runs; RSTs the client got over all runs"
echo
echo "| server | signal | client keeps the socket open (ms) | its RSTs | pipelined request after the FIN (ms) | its RSTs |"
echo "|---|---|---:|---:|---:|---:|"
for row in "${avail[@]}"; do
  read -r kind sig <<<"$row"
  line="| $kind | SIG$sig |"
  for case in keepopen pipelined; do
    ms='' rst=0 cut=0
    read -r -a ts <<<"${T[$row,$case]}"
    read -r -a xs <<<"${X[$row,$case]}"
    for i in "${!ts[@]}"; do
      if [ "${ts[$i]}" = cut ]; then cut=$(( cut + 1 )); else ms+="${ts[$i]} "; fi
      [[ "${xs[$i]:-}" =~ ^[0-9]+$ ]] && rst=$(( rst + xs[i] ))
    done
    if [ "$cut" -gt 0 ]; then line+=" request cut in $cut of $runs runs | $rst |"
    else line+=" $(tr ' ' '\n' <<<"$ms" | grep . | median) | $rst |"; fi
  done
  echo "$line"
done
