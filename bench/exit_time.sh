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
# Usage: bench/exit_time.sh [--runs N] [--servers LIST] [--bin-dir DIR]
#   --servers  graceful,go-http,nginx (default all; nginx is measured with QUIT, its graceful
#              stop, and with TERM, its fast stop). nginx has no sleep of its own, so its /slow
#              is proxied to a go-http upstream.
#   --runs N   runs per cell, the median is reported (default 3)
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
  start_server "exit-$kind" "$kind" "$port"
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
      sleep 0.15 ;;
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
echo "# ms from the signal to the exit of the (master) process, median of $runs runs; inflight = GET /slow?ms=2000 sent 200 ms before the signal"
echo
echo "| server | signal | idle (ms) | one idle keep-alive conn (ms) | 2 s request in flight (ms) | in-flight request got |"
echo "|---|---|---:|---:|---:|---|"
for row in "${rows[@]}"; do
  read -r kind sig <<<"$row"
  if ! have_kind "$kind"; then echo "| $kind | SIG$sig | skipped: not built | | | |"; continue; fi
  line="| $kind | SIG$sig |"
  codes=
  for case in idle keepalive inflight; do
    ms=
    for r in $(seq 1 "$runs"); do
      read -r t c <<<"$(one_run "$kind" "$sig" "$case")"
      [ -n "$t" ] || exit 1
      ms+="$t "
      [ "$case" = inflight ] && codes+="$c "
      log "$kind SIG$sig $case run $r: ${t} ms, in-flight request: $c"
    done
    line+=" $(tr ' ' '\n' <<<"$ms" | grep . | median) |"
  done
  echo "$line $(tr ' ' '\n' <<<"$codes" | grep . | sort | uniq -c | awk '{printf "%s%s x%s", (NR>1?", ":""), ($2=="000"?"failed":$2), $1}') |"
done

echo
echo "# ms from the client having read its last response (GET /slow?ms=300 in flight at the signal) to the exit, median of $runs runs; RSTs the client got over all runs"
echo
echo "| server | signal | client keeps the socket open (ms) | its RSTs | pipelined request after the FIN (ms) | its RSTs |"
echo "|---|---|---:|---:|---:|---:|"
for row in "${rows[@]}"; do
  read -r kind sig <<<"$row"
  have_kind "$kind" || continue
  line="| $kind | SIG$sig |"
  for case in keepopen pipelined; do
    ms= rst=0 cut=0
    for r in $(seq 1 "$runs"); do
      read -r t x <<<"$(one_run "$kind" "$sig" "$case")"
      [ -n "$t" ] || exit 1
      if [ "$t" = cut ]; then cut=$(( cut + 1 )); else ms+="$t "; fi
      [[ "$x" =~ ^[0-9]+$ ]] && rst=$(( rst + x ))
      log "$kind SIG$sig $case run $r: exit ${t} ms after the response, RSTs: $x"
    done
    if [ "$cut" -gt 0 ]; then line+=" request cut in $cut of $runs runs | $rst |"
    else line+=" $(tr ' ' '\n' <<<"$ms" | grep . | median) | $rst |"; fi
  done
  echo "$line"
done
