#!/usr/bin/env bash
# Restart scenarios under load: how many requests each way of restarting a server loses, and
# the p99 latency around the restart, for graceful-server and its peers, measured by
# graceful-bench (every request classified) and by wrk (socket errors + non-2xx).
#
# Usage: bench/restart.sh [options]
#   --scenarios LIST   comma-separated (default: all):
#                        graceful-upgrade  graceful-server, SIGHUP upgrade
#                        graceful-kill9    graceful-server, kill -9 + start again
#                        graceful-term     graceful-server, SIGTERM, wait for exit, start again
#                        go-shutdown       go-http (net/http Shutdown), SIGTERM + start again
#                        go-tableflip      go-tableflip, SIGHUP upgrade (cloudflare/tableflip)
#                        nginx-upgrade     nginx binary upgrade (USR2, WINCH, QUIT old master)
#                        nginx-reload      nginx -s reload
#   --modes LIST       keepalive,close (default both; close = a new connection per request)
#   --tools LIST       graceful-bench,wrk (default both)
#   --runs N           runs per scenario, mode and tool (default 5)
#   --connections N    concurrent connections (default 64)
#   --duration S       seconds of load per run (default 6)
#   --at S             second at which the restart happens (default 3)
#   --threads N        wrk threads (default 2)
#   --delay MS         run the load through delay-proxy (tests/programs/delay-proxy): MS
#                      milliseconds one-way in each direction (default 0: loopback)
#   --strict           graceful-bench --strict: reuse keep-alive connections unchecked (the
#                      naive client's count; default: a careful pooled client's)
#   --plot DIR         graceful-bench --plot of each scenario's first keep-alive run, written to
#                      DIR/restart-SCENARIO.png
#   --raw FILE         append one TSV line per run (scenario mode tool run failed p99_ms gap_ms
#                      requests kinds reconnects)
#   --bin-dir DIR      graceful-server / graceful-bench (default build-release/bin, then build/bin)
#   --h2               HTTP/2 instead (issue 16): runs bench/restart_h2.sh with the other options:
#                      graceful-upgrade, nginx-reload (http2), nginx-upgrade, go-shutdown (Go
#                      x/net/http2 h2c, Shutdown + restart) in one run under graceful-bench --h2;
#                      failed streams, retried, p99, reconnects. Its options: --runs --connections
#                      --streams --duration --at --scenarios --bin-dir (restart.sh --h2 --help)
#   -h, --help
# Loopback only; each run starts a fresh server and stops it (and all it forked) afterwards.
# A scenario whose programs are missing is skipped with a note. Exit 1 if the harness fails
# (a server does not start, an action fails, a server does not answer after its restart),
# 2 for bad usage. Failed requests are results, not harness failures.
set -euo pipefail
PROG=restart.sh
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

usage() { sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
# --h2 anywhere: the HTTP/2 scenarios, by bench/restart_h2.sh with every other argument.
for arg in "$@"; do
  if [ "$arg" = --h2 ]; then
    h2_args=()
    for a in "$@"; do [ "$a" = --h2 ] || h2_args+=("$a"); done
    exec "$(dirname "$0")/restart_h2.sh" "${h2_args[@]}"
  fi
done
all_scenarios=graceful-upgrade,graceful-kill9,graceful-term,go-shutdown,go-tableflip,nginx-upgrade,nginx-reload
scenarios=$all_scenarios modes=keepalive,close tools=graceful-bench,wrk
runs=5 conns=64 duration=6 at=3 threads=2 plot='' raw='' delay=0 strict=''
BIN_DIR=$(find_bin_dir)
while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) scenarios=${2:?}; shift 2 ;;
    --modes) modes=${2:?}; shift 2 ;;
    --tools) tools=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --connections) conns=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --at) at=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --delay) delay=${2:?}; shift 2 ;;
    --strict) strict=--strict; shift ;;
    --plot) plot=${2:?}; shift 2 ;;
    --raw) raw=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "$PROG: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done
for v in "$runs" "$conns" "$duration" "$at" "$threads" "$delay"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "$PROG: not a whole number: $v" >&2; exit 2; }
done
[ "$runs" -ge 1 ] && [ "$at" -ge 1 ] && [ "$duration" -gt $(( at + 1 )) ] ||
  { echo "$PROG: need --runs >= 1 and 1 <= --at < --duration - 1" >&2; exit 2; }

# scenario -> "server-kind action"
declare -A scen_def=(
  [graceful-upgrade]="graceful sighup"
  [graceful-kill9]="graceful kill9-restart"
  [graceful-term]="graceful term-restart"
  [go-shutdown]="go-http term-restart"
  [go-tableflip]="go-tableflip sighup"
  [nginx-upgrade]="nginx nginx-upgrade"
  [nginx-reload]="nginx nginx-reload"
)
IFS=, read -r -a scen_list <<<"$scenarios"
IFS=, read -r -a mode_list <<<"$modes"
IFS=, read -r -a tool_list <<<"$tools"
for s in "${scen_list[@]}"; do [ -n "${scen_def[$s]:-}" ] || { echo "$PROG: unknown scenario $s" >&2; exit 2; }; done
for m in "${mode_list[@]}"; do case "$m" in keepalive|close) ;; *) echo "$PROG: unknown mode $m" >&2; exit 2 ;; esac; done
for t in "${tool_list[@]}"; do case "$t" in graceful-bench|wrk) ;; *) echo "$PROG: unknown tool $t" >&2; exit 2 ;; esac; done

if [ -n "$plot" ]; then
  mkdir -p "$plot" && plot=$(cd "$plot" && pwd) || { echo "$PROG: cannot create $plot" >&2; exit 2; }
fi
bench_init
peers_init
if [ "$delay" -gt 0 ] && [ ! -x "$BIN_DIR/delay-proxy" ]; then
  echo "$PROG: --delay needs $BIN_DIR/delay-proxy (cmake --build build --target delay-proxy)" >&2; exit 2
fi
# start_proxy PORT: delay-proxy in front of 127.0.0.1:PORT in its own process group (stopped
# with the servers); prints the port clients use.
start_proxy() {
  local pf="$STATE/proxy.port"
  rm -f "$pf"
  setsid "$BIN_DIR/delay-proxy" --to "$1" --delay "${delay}ms" --port-file "$pf" </dev/null >>"$STATE/proxy.log" 2>&1 &
  echo "$!" >>"$STATE/groups"
  local end=$(( $(now_ns) + 5000000000 ))
  until [ -s "$pf" ]; do
    [ "$(now_ns)" -lt "$end" ] || die "delay-proxy did not start: $(tail -n 3 "$STATE/proxy.log")"
    sleep 0.01
  done
  cat "$pf"
}
have_tool() {
  case "$1" in
    graceful-bench) [ -x "$BIN_DIR/graceful-bench" ] ;;
    wrk) command -v wrk >/dev/null ;;
  esac
}

# to_ms VALUE: wrk's "1.23ms" / "850.00us" / "1.02s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0;
    else if (v ~ /m$/) printf "%.2f", v * 60000; else if (v ~ /s$/) printf "%.2f", v * 1000;
    else print "?" }'
}

# gb_field JSON WHAT: reads graceful-bench --json output (schema 2: `requests`,
# `failures.total`, `action.window` = the second around the action, `longest_without_success_ms`,
# `connections.reconnects.total`).
gb_field() {
  case "$2" in
    requests) jq -r '.requests // "?"' "$1" ;;
    failed) jq -r '.failures.total // "?"' "$1" ;;
    p99_action) jq -r '.action.window.latency_ms.p99 // "?"' "$1" ;;
    gap) jq -r '.longest_without_success_ms // "?"' "$1" ;;
    reconnects) jq -r '.connections.reconnects.total // "?"' "$1" ;;
    # "connect_refused=12,connection_reset=64": the classes that occurred, for the kinds column.
    kinds) jq -r '[.failures | to_entries[] | select(.key != "total" and .value > 0)
                   | "\(.key)=\(.value)"] | join(",")' "$1" ;;
  esac
}

# one_run SCENARIO MODE TOOL RUN: prints "failed p99_ms gap_ms requests kinds reconnects".
one_run() {
  local scen=$1 mode=$2 tool=$3 run=$4 kind action port url env rc out json
  read -r kind action <<<"${scen_def[$scen]}"
  port=$(free_port)
  url="http://127.0.0.1:$port/"
  start_server "$scen" "$kind" "$port"
  local load_url=$url
  [ "$delay" -gt 0 ] && load_url="http://127.0.0.1:$(start_proxy "$port")/"
  env="$STATE/$scen.env"
  rm -f "$STATE/$scen.action-rc"
  local pid_before; pid_before=$(current_pid "$scen")
  local act; act=$(printf '%q %q %q' "$BENCH_DIR/action.sh" "$action" "$env")
  local failed p99 requests gap=- kinds='' reconnects=-
  case "$tool" in
    graceful-bench)
      json="$STATE/run.json"; rm -f "$json"
      local -a gb=("$BIN_DIR/graceful-bench" "$load_url" -c "$conns" -d "${duration}s"
                   --at "${at}s" --exec "$act" --json "$json")
      [ "$mode" = close ] && gb+=(--close)
      [ -n "$strict" ] && gb+=("$strict")
      [ -n "$plot" ] && [ "$mode" = keepalive ] && [ "$run" = 1 ] &&
        gb+=(--plot "$plot/restart-$scen.png")
      rc=0; timeout $(( duration + 30 )) "${gb[@]}" >"$STATE/run.out" 2>&1 || rc=$?
      # 0: nothing failed, 1: some requests failed; anything else is the harness's problem.
      if [ "$rc" -gt 1 ]; then
        tail -n 20 "$STATE/run.out" >&2
        die "$scen/$mode/$tool run $run: graceful-bench exited $rc: ${gb[*]}"
      fi
      failed=$(gb_field "$json" failed); p99=$(gb_field "$json" p99_action)
      requests=$(gb_field "$json" requests); gap=$(gb_field "$json" gap)
      kinds=$(gb_field "$json" kinds); reconnects=$(gb_field "$json" reconnects)
      ;;
    wrk)
      local -a w=(wrk -t"$threads" -c"$conns" -d"${duration}s" --latency "$load_url")
      [ "$mode" = close ] && w+=(-H "Connection: close")
      timeout $(( duration + 30 )) "${w[@]}" >"$STATE/run.out" 2>&1 &
      local wpid=$!
      sleep "$at"
      bash -c "$act" || true
      rc=0; wait "$wpid" || rc=$?
      [ "$rc" -eq 0 ] || { cat "$STATE/run.out" >&2; die "$scen/$mode/$tool run $run: wrk exited $rc"; }
      out=$(cat "$STATE/run.out")
      failed=$(awk '/Socket errors:/ {gsub(",", ""); s += $4 + $6 + $8 + $10}
                    /Non-2xx or 3xx responses:/ {s += $NF} END {print s + 0}' <<<"$out")
      p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
      requests=$(awk '/requests in/ {print $1}' <<<"$out")
      kinds=$(awk '/Socket errors:/ {gsub(",", ""); printf "connect=%d,read=%d,write=%d,timeout=%d,", $4, $6, $8, $10}
                   /Non-2xx or 3xx responses:/ {printf "non2xx=%d,", $NF}' <<<"$out" |
              tr ',' '\n' | awk -F= 'NF == 2 && $2 != 0' | paste -sd, -)
      ;;
  esac
  local arc; arc=$(cat "$STATE/$scen.action-rc" 2>/dev/null || echo "?")
  [ "$arc" = 0 ] || die "$scen/$mode/$tool run $run: the restart action '$action' failed (status $arc)"
  # Every action but a reload replaces the serving process: if the pid file still names the old
  # one, nothing was restarted and the numbers would flatter the scenario.
  if [ "$action" != nginx-reload ] && [ "$(current_pid "$scen")" = "$pid_before" ]; then
    die "$scen/$mode/$tool run $run: '$action' did not replace pid $pid_before (pid file $STATE/$scen.pid unchanged)"
  fi
  # The restarted/upgraded server must still answer: otherwise the numbers measure a dead server.
  curl -sS --max-time 5 -o /dev/null "$url" ||
    die "$scen/$mode/$tool run $run: server not answering after the restart"
  stop_all_servers
  echo "$failed $p99 $gap $requests ${kinds:-none} $reconnects"
}

echo "# restart.sh $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# graceful: $(shown_path "$BIN_DIR") ($(build_type "$BIN_DIR") build); $(nginx -v 2>&1); $(go version | cut -d' ' -f3)"
echo "# load: $conns connections, ${duration}s, restart at ${at}s; $runs runs each; graceful-bench URL -c $conns -d ${duration}s --at ${at}s --exec ACTION [--close] ${strict:+$strict }--json F; wrk -t$threads -c$conns -d${duration}s --latency [-H 'Connection: close']"
if [ "$delay" -gt 0 ]; then
  echo "# path: through delay-proxy, ${delay} ms one-way each direction (bytes, FIN, RST delayed in order)"
else
  echo "# path: loopback"
fi
echo "# graceful-bench counts ${strict:+as a naive client (--strict: keep-alive connections reused unchecked)}${strict:-as a careful pooled client (a close seen while idle is a reconnect, not a failure)}"
echo "# failed = graceful-bench failures.total | wrk socket errors + non-2xx; p99 = graceful-bench action.window p99 (the second around the restart) | wrk p99 of the whole run; longest without a success: graceful-bench only"
echo
echo "| scenario | mode | tool | failed (median) | failed per run | p99 ms (median) | longest without a success, ms (median) | requests (median) | reconnects (median) | failure kinds, all runs |"
echo "|---|---|---|---:|---|---:|---:|---:|---:|---|"
fmt2() { awk -v v="$1" 'BEGIN { if (v == "-") print v; else printf "%.2f", v }'; }
med() { local m; m=$(tr ' ' '\n' <<<"$1" | grep -E '^[0-9.]+$' | median); [ "$m" = nan ] && m=-; echo "$m"; }
# Medians by "scenario mode tool", for the side-by-side summary at the end.
declare -A sum_failed sum_p99 sum_reconnects
for scen in "${scen_list[@]}"; do
  read -r kind _ <<<"${scen_def[$scen]}"
  if ! have_kind "$kind"; then
    echo "| $scen | | | skipped: $kind not built | | | | | | |"; continue
  fi
  for mode in "${mode_list[@]}"; do
    for tool in "${tool_list[@]}"; do
      if ! have_tool "$tool"; then
        echo "| $scen | $mode | $tool | skipped: $tool not built | | | | | | |"; continue
      fi
      fs='' ps='' gs='' rs='' ks='' cs=''
      for run in $(seq 1 "$runs"); do
        read -r f p g r k c <<<"$(one_run "$scen" "$mode" "$tool" "$run")" || exit 1
        [ -n "$c" ] || exit 1
        log "$scen $mode $tool run $run: failed $f ($k), p99 ${p} ms, longest gap ${g} ms, requests $r, reconnects $c"
        [ -z "$raw" ] || printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$mode" "$tool" "$run" "$f" "$p" "$g" "$r" "$k" "$c" >>"$raw"
        fs+="$f "; ps+="$p "; gs+="$g "; rs+="$r "; ks+="$k,"; cs+="$c "
      done
      sum_failed["$scen $mode $tool"]=$(med "$fs")
      sum_p99["$scen $mode $tool"]=$(fmt2 "$(med "$ps")")
      sum_reconnects["$scen $mode $tool"]=$(med "$cs")
      # Failure kinds summed over the runs, e.g. "connection_reset=320".
      kinds=$(tr ',' '\n' <<<"$ks" | awk -F= 'NF == 2 {n[$1] += $2} END {for (k in n) printf "%s=%d\n", k, n[k]}' |
              sort | paste -sd, -)
      printf '| %s | %s | %s | %s | %s| %s | %s | %s | %s | %s |\n' "$scen" "$mode" "$tool" \
        "$(med "$fs")" "$fs" "${sum_p99["$scen $mode $tool"]}" "$(med "$gs")" "$(med "$rs")" \
        "${sum_reconnects["$scen $mode $tool"]}" "${kinds:-none}"
    done
  done
done

# Side by side: one row per scenario, failed requests (median) and p99 for each mode and tool.
echo
header="| scenario |" rule="|---|"
for mode in "${mode_list[@]}"; do
  for tool in "${tool_list[@]}"; do
    header+=" $mode: $tool failed | $mode: $tool p99 ms |"; rule+="---:|---:|"
  done
done
echo "$header"; echo "$rule"
for scen in "${scen_list[@]}"; do
  line="| $scen |"
  for mode in "${mode_list[@]}"; do
    for tool in "${tool_list[@]}"; do
      line+=" ${sum_failed["$scen $mode $tool"]:--} | ${sum_p99["$scen $mode $tool"]:--} |"
    done
  done
  echo "$line"
done

# Reconnects per restart: how many new connections the restart forced on graceful-bench's
# keep-alive clients (one restart per run; a healthy server forces none). A hand-over that
# kept connections would show 0; one that closes each connection once shows -c.
if [[ " ${tool_list[*]} " == *" graceful-bench "* ]] && [[ " ${mode_list[*]} " == *" keepalive "* ]]; then
  echo
  echo "| scenario | reconnects per restart (graceful-bench keep-alive, median) | failed per restart (median) |"
  echo "|---|---:|---:|"
  for scen in "${scen_list[@]}"; do
    echo "| $scen | ${sum_reconnects["$scen keepalive graceful-bench"]:--} | ${sum_failed["$scen keepalive graceful-bench"]:--} |"
  done
fi
