#!/usr/bin/env bash
# A Kubernetes rolling update on one machine, behind a real load balancer.
#
# HAProxy (active health checks on /readyz every 200 ms) balances over six backend slots on
# loopback ports; three graceful-server instances run in slots 1-3. graceful-bench drives
# load through HAProxy while the instances are replaced one at a time the way a Deployment
# with maxSurge=1, maxUnavailable=0 does it:
#   1. start the new instance in a free slot and wait until HAProxy sees it UP;
#   2. send SIGTERM to an old instance while it is still in the pool (as the kubelet does,
#      racing the endpoint removal), and wait for it to exit.
# HAProxy is configured like kube-proxy's iptables rules: a refused connection is not retried
# on another server (retries 0), so whatever a real rollout would lose, this one loses too.
#
# usage: rolling-update.sh [--drain-delay D] [--duration S] [--connections N]
#                          [--bin-dir DIR] [--json FILE] [--keep-logs]
#   --drain-delay D   graceful-server --drain-delay for the instances (default 1s; 0 shows
#                     why the delay matters)
#   --duration S      load duration in seconds (default: long enough for the rollout)
# Exit: 0 when graceful-bench counted no failed request, 1 when it counted some, 2 on usage
# or harness errors. Prints graceful-bench's report and a one-line summary.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin_dir="$root/build/bin"
drain_delay=1s
duration=""
connections=32
json=""
keep_logs=0
while [ $# -gt 0 ]; do
  case "$1" in
    --drain-delay) drain_delay="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --bin-dir) bin_dir="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    --keep-logs) keep_logs=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "rolling-update.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
server="$bin_dir/graceful-server"
bench="$bin_dir/graceful-bench"
for b in "$server" "$bench"; do
  [ -x "$b" ] || { echo "rolling-update.sh: $b not built (cmake --build build)" >&2; exit 2; }
done
command -v haproxy >/dev/null || { echo "rolling-update.sh: haproxy not installed (scripts/install-deps.sh)" >&2; exit 2; }

work=$(mktemp -d /tmp/graceful-rollout.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$keep_logs" = 1 ]; then echo "logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
front=$(free_port)
stats=$(free_port)
slot_port=()
for i in 1 2 3 4 5 6; do slot_port[$i]=$(free_port); done

cat > "$work/haproxy.cfg" <<CFG
global
  maxconn 4096
  pidfile $work/haproxy.pid
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
  # Like kube-proxy: a connection refused by a backend is not retried elsewhere.
  retries 0
frontend fe
  bind 127.0.0.1:$front
  default_backend be
backend be
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 200ms fall 1 rise 1
$(for i in 1 2 3 4 5 6; do echo "  server s$i 127.0.0.1:${slot_port[$i]} check"; done)
listen stats
  bind 127.0.0.1:$stats
  stats enable
  stats uri /stats
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)

declare -A slot_pid
start_instance() {  # slot
  local slot=$1
  "$server" --listen "127.0.0.1:${slot_port[$slot]}" --drain-delay "$drain_delay" \
    --shutdown-timeout 10s --log-level info >"$work/server-s$slot.log" 2>&1 &
  slot_pid[$slot]=$!
  pids+=($!)
}
slot_status() {  # slot -> UP / DOWN / ...
  curl -fsS "http://127.0.0.1:$stats/stats;csv" 2>/dev/null |
    awk -F, -v s="s$1" '$1=="be" && $2==s {print $18}'
}
wait_up() {  # slot
  for _ in $(seq 1 200); do
    [ "$(slot_status "$1")" = UP ] && return 0
    sleep 0.05
  done
  echo "rolling-update.sh: slot s$1 never became UP in HAProxy" >&2
  exit 2
}

for s in 1 2 3; do start_instance "$s"; done
for s in 1 2 3; do wait_up "$s"; done

# Load for the whole rollout: each step is ~ drain delay + shutdown, three steps.
if [ -z "$duration" ]; then
  dd=$(python3 -c "import re,sys; t=sys.argv[1]; u={'ms':1e-3,'s':1,'m':60}; print(sum(float(n)*u[x] for n,x in re.findall(r'([0-9.]+)(ms|s|m)',t)))" "$drain_delay")
  duration=$(python3 -c "print(int(3 * ($dd + 2.5) + 3))")
fi
json_out=${json:-$work/bench.json}
"$bench" "http://127.0.0.1:$front/" -c "$connections" -d "${duration}s" --json "$json_out" \
  >"$work/bench.txt" 2>&1 &
bench_pid=$!
pids+=($bench_pid)
sleep 1

# Replace s1->s4, s2->s5, s3->s6, one at a time.
for step in 1 2 3; do
  old=$step
  new=$((step + 3))
  start_instance "$new"
  wait_up "$new"
  echo "rollout: s$new UP; SIGTERM to s$old (pid ${slot_pid[$old]}) while it is still in the pool"
  kill -TERM "${slot_pid[$old]}"
  if ! wait "${slot_pid[$old]}"; then
    echo "rolling-update.sh: old instance s$old exited non-zero" >&2
  fi
done

set +e
wait "$bench_pid"
bench_rc=$?
set -e
cat "$work/bench.txt"
failed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['failures']['total'])" "$json_out")
total=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests'])" "$json_out")
echo "rolling-update: drain-delay=$drain_delay requests=$total failed=$failed"
if [ "$bench_rc" -ge 2 ]; then exit 2; fi
[ "$failed" = 0 ]
