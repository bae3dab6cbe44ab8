# shellcheck shell=bash
# Shared by bench/*.sh (sourced, not run). Starts servers in their own process groups on
# loopback, records every group in $STATE/groups, and kills them all on exit, so a harness that
# fails or is interrupted leaves no process behind.
#
# The caller sets PROG and calls bench_init before anything else.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
# shown_path PATH: PATH relative to the repository when inside it, else its last two parts, so
# that the headers a script prints (and RESULTS.md quotes) name no directory of this machine.
shown_path() {
  case "$1" in
    "$REPO"/*) printf '%s' "${1#"$REPO"/}" ;;
    */*/*) printf '.../%s' "$(basename "$(dirname "$1")")/$(basename "$1")" ;;
    *) printf '%s' "$1" ;;
  esac
}
now_ns() { local t=${EPOCHREALTIME/[.,]/}; echo $(( t * 1000 )); }

# bench_init [STATE_DIR]: a private state dir (servers' logs, pid files, nginx prefix) and the
# cleanup trap. With KEEP_STATE=1 the directory is left for inspection.
bench_init() {
  STATE=${1:-$(mktemp -d "${TMPDIR:-/tmp}/graceful-bench.XXXXXX")}
  mkdir -p "$STATE"
  : >"$STATE/groups"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

bench_cleanup() {
  local rc=$? g
  trap - EXIT
  stop_all_servers
  if [ "${KEEP_STATE:-0}" = 1 ]; then log "state kept in $STATE"; else rm -rf "$STATE"; fi
  exit "$rc"
}

# alive PID: exists and is not a zombie (a daemonised nginx master waits for init to reap it).
# Reads /proc without forking: exit_time.sh polls it every few milliseconds.
alive() {
  local _pid _comm st
  read -r _pid _comm st _ 2>/dev/null <"/proc/$1/stat" || return 1
  [ "$st" != Z ]
}
# group_alive PGID: any live member left in the process group.
group_alive() {
  local p
  for p in $(ps -o pid= -g "$1" 2>/dev/null); do alive "$p" && return 0; done
  return 1
}
# wait_gone PID SECONDS: true once PID has exited.
wait_gone() {
  local end=$(( $(now_ns) + $2 * 1000000000 ))
  while alive "$1"; do [ "$(now_ns)" -lt "$end" ] || return 1; sleep 0.005; done
}
# wait_port PORT SECONDS: true once 127.0.0.1:PORT accepts a connection.
wait_port() {
  local end=$(( $(now_ns) + $2 * 1000000000 ))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ "$(now_ns)" -lt "$end" ] || return 1; sleep 0.02
  done
}
# free_port: an unused port below the ephemeral range (so wrk's own sockets never collide).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    if ! ss -Htan "( sport = :$p )" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

# find_bin_dir: graceful's programs. --bin-dir / $GRACEFUL_BIN_DIR win; else a Release build.
find_bin_dir() {
  local d
  for d in "${GRACEFUL_BIN_DIR:-}" "$REPO/build-release/bin" "$REPO/build/bin"; do
    [ -n "$d" ] && [ -d "$d" ] && { (cd "$d" && pwd); return 0; }
  done
  echo "$REPO/build-release/bin"
}
# build_type DIR: CMAKE_BUILD_TYPE of the build tree holding bin dir DIR ("?" if unknown).
build_type() {
  local t
  t=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$1/../CMakeCache.txt" 2>/dev/null)
  echo "${t:-?}"
}

# peers_init: builds the Go and C peers (cached) and sets PEERS to their directory.
peers_init() {
  PEERS=$("$BENCH_DIR/peers/build.sh" "${BENCH_PEERS_DIR:-$REPO/build/bench-peers}") ||
    die "building the Go peers failed"
}

# have_kind KIND: true if the server KIND can run here.
have_kind() {
  case "$1" in
    graceful) [ -x "$BIN_DIR/graceful-server" ] ;;
    go-http|go-tableflip|floor) [ -x "$PEERS/$1" ] ;;
    nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] ;;
    *) return 1 ;;
  esac
}

# start_server NAME KIND PORT: starts server KIND on 127.0.0.1:PORT in its own process group
# and waits (10 s at most) until it accepts connections. Writes $STATE/NAME.env for the restart
# actions (bench/action.sh), which run in another process. Sets SERVER_PID.
start_server() {
  local name=$1 kind=$2 port=$3 pidfile="$STATE/$1.pid"
  local -a cmd
  case "$kind" in
    graceful) local -a extra=()
              # GRACEFUL_SERVER_ARGS: extra flags, split on spaces (e.g. "--threads 2").
              read -r -a extra <<<"${GRACEFUL_SERVER_ARGS:-}"
              cmd=("$BIN_DIR/graceful-server" --listen "127.0.0.1:$port" --pid-file "$pidfile" "${extra[@]}") ;;
    go-http) cmd=("$PEERS/go-http" -listen "127.0.0.1:$port" -pid-file "$pidfile") ;;
    go-tableflip) cmd=("$PEERS/go-tableflip" -listen "127.0.0.1:$port" -pid-file "$pidfile") ;;
    # FLOOR_WORKERS: its threads (default 1); FLOOR_CLOSE=1: Connection: close on every response.
    floor) cmd=("$PEERS/floor" -listen "127.0.0.1:$port" -pid-file "$pidfile" -workers "${FLOOR_WORKERS:-1}")
           [ "${FLOOR_CLOSE:-0}" = 1 ] && cmd+=(-close) ;;
    nginx) ;;
    *) die "unknown server kind $kind" ;;
  esac
  rm -f "$pidfile"
  {
    printf 'SERVER_NAME=%q\nSERVER_KIND=%q\nSERVER_PORT=%q\nSERVER_PIDFILE=%q\n' \
      "$name" "$kind" "$port" "$pidfile"
    [ "$kind" = nginx ] && printf 'NGINX_DIR=%q\nNGINX_WORKERS=%q\nNGINX_SLOW_PORT=%q\n' \
      "$STATE/$name-nginx" "${NGINX_WORKERS:-$(nproc)}" "${NGINX_SLOW_PORT:-9}"
    printf 'SERVER_CMD=('; printf '%q ' "${cmd[@]}"; printf ')\n'
    printf 'STATE=%q\nBIN_DIR=%q\nPEERS=%q\n' "$STATE" "${BIN_DIR:-}" "${PEERS:-}"
  } >"$STATE/$name.env"
  launch_server "$STATE/$name.env"
}

# launch_server ENV_FILE: (re)starts the server an env file describes; used by start_server and
# by the restart actions. Appends its process group to $STATE/groups. Sets SERVER_PID.
launch_server() {
  # shellcheck disable=SC1090
  source "$1"
  if [ "$SERVER_KIND" = nginx ]; then
    mkdir -p "$NGINX_DIR"
    SERVER_PID=$("$BENCH_DIR/peers/nginx/nginx.sh" start "$NGINX_DIR" "$SERVER_PORT" \
                 "$NGINX_WORKERS" "$NGINX_SLOW_PORT") || die "nginx did not start"
    # A daemonised master leads its own process group; upgraded masters stay in it.
    echo "$SERVER_PID" >>"$STATE/groups"
    ln -sf "$NGINX_DIR/nginx.pid" "$SERVER_PIDFILE"
    return 0
  fi
  # setsid without --fork keeps the pid (a background job is never a group leader), so the
  # harness can wait for it and kill the whole group, including generations it forks.
  setsid "${SERVER_CMD[@]}" </dev/null >>"$STATE/$SERVER_NAME.log" 2>&1 &
  SERVER_PID=$!
  echo "$SERVER_PID" >>"$STATE/groups"
  if ! wait_port "$SERVER_PORT" 10; then
    tail -n 20 "$STATE/$SERVER_NAME.log" >&2
    die "$SERVER_KIND did not accept connections on 127.0.0.1:$SERVER_PORT within 10 s"
  fi
  if ! alive "$SERVER_PID"; then
    tail -n 20 "$STATE/$SERVER_NAME.log" >&2
    die "$SERVER_KIND exited at start (is 127.0.0.1:$SERVER_PORT taken?)"
  fi
  # The restart actions signal whatever the pid file names: it must name this process.
  local end=$(( $(now_ns) + 5000000000 ))
  until [ "$(tr -d '[:space:]' 2>/dev/null <"$SERVER_PIDFILE")" = "$SERVER_PID" ]; do
    [ "$(now_ns)" -lt "$end" ] || die "$SERVER_KIND did not write pid $SERVER_PID to $SERVER_PIDFILE"
    sleep 0.01
  done
}

# current_pid NAME: the pid now serving (it changes across upgrades); reads the pid file.
current_pid() {
  local f="$STATE/$1.pid"
  [ -s "$f" ] && tr -d '[:space:]' 2>/dev/null <"$f"
}

# stop_all_servers: TERM every recorded process group, KILL what is left after 3 s.
stop_all_servers() {
  [ -n "${STATE:-}" ] && [ -f "$STATE/groups" ] || return 0
  local g end
  for g in $(sort -u "$STATE/groups"); do kill -TERM -- "-$g" 2>/dev/null || true; done
  end=$(( $(now_ns) + 3000000000 ))
  for g in $(sort -u "$STATE/groups"); do
    while group_alive "$g" && [ "$(now_ns)" -lt "$end" ]; do sleep 0.02; done
    kill -KILL -- "-$g" 2>/dev/null || true
  done
  : >"$STATE/groups"
}

# cpu_ticks PGID: user + system CPU time (clock ticks, getconf CLK_TCK) so far of every process
# in the group, threads included (nginx: master + workers).
cpu_ticks() {
  local p s=0 rest
  for p in $(ps -o pid= -g "$1" 2>/dev/null); do
    # Fields after "(comm)": state is 3, utime 14, stime 15 of the whole line.
    rest=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    s=$(( s + $(awk '{print $12 + $13}' <<<"$rest") ))
  done
  echo "$s"
}

# task_ticks PGID: "TID TICKS" (user + system) for every thread of every process in the group:
# two readings tell how a server's CPU was shared between its threads (workers, loops).
task_ticks() {
  local p t
  for p in $(ps -o pid= -g "$1" 2>/dev/null); do
    for t in /proc/"$p"/task/*; do
      sed 's/^.*) //' "$t/stat" 2>/dev/null | awk -v id="${t##*/}" '{print id, $12 + $13}'
    done
  done
}
# busiest_share BEFORE AFTER: the busiest thread's share (%) of the CPU the threads used between
# two task_ticks readings (at 2 workers: 50 is an even split, 100 one worker doing everything).
busiest_share() {
  awk 'NR == FNR {b[$1] = $2; next} {d = $2 - b[$1]; s += d; if (d > m) m = d}
       END {if (s > 0) printf "%.0f", 100 * m / s; else print "nan"}' <(echo "$1") <(echo "$2")
}

# rss_kb PGID: summed resident set of every process in the group (nginx: master + workers).
rss_kb() { ps -o rss= -g "$1" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }

# median: of the numbers on stdin, one per line (mean of the middle two for an even count).
median() {
  sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit}
    if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}
