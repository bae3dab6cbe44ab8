#!/usr/bin/env bash
# Runs and controls the nginx peer from a private prefix directory (never the system nginx).
#
# Usage:
#   nginx.sh start DIR PORT [WORKERS] [SLOW_UPSTREAM_PORT]
#       write DIR/nginx.conf from nginx.conf.in, start nginx (it daemonises into its own process
#       group) and print the master's pid once it answers on PORT. WORKERS defaults to nproc;
#       SLOW_UPSTREAM_PORT serves /slow (default 9: nothing listens, /slow answers 502).
#   nginx.sh reload DIR     `nginx -s reload`: new workers, old ones finish gracefully.
#   nginx.sh upgrade DIR    binary upgrade: USR2 (a new master on the same listeners), wait for
#                           the new master and its workers, then WINCH and QUIT the old master.
#   nginx.sh stop DIR       QUIT (graceful shutdown) the current master.
#   nginx.sh pid DIR        print the current master's pid.
# Every wait is bounded (10 s); exit 1 if a step does not happen in time, 2 for bad usage.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
nginx_bin=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "nginx.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
[ -d "$dir" ] || die "no directory $dir"
dir=$(cd "$dir" && pwd)

master_pid() { [ -s "$dir/nginx.pid" ] && tr -d '[:space:]' <"$dir/nginx.pid"; }
# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3=="Z")}' "/proc/$1/stat" 2>/dev/null; }
workers_of() { ps -o pid= --ppid "$1" 2>/dev/null | wc -l; }
# wait_for SECONDS COMMAND...: polls every 20 ms.
wait_for() {
  local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@"; do
    [ "$(date +%s%N)" -lt "$end" ] || return 1
    sleep 0.02
  done
}
ngx() { "$nginx_bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" "$@"; }

case "$cmd" in
  start)
    [ $# -ge 3 ] || usage
    port=$3 workers=${4:-$(nproc)} slow=${5:-9}
    mkdir -p "$dir/tmp"
    rm -f "$dir/nginx.pid" "$dir/nginx.pid.oldbin"
    sed -e "s|@PREFIX@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$workers|g" \
        -e "s|@SLOW_UPSTREAM_PORT@|$slow|g" "$here/nginx.conf.in" >"$dir/nginx.conf"
    # -e: the error log before the config is read (nginx >= 1.19.5), so nothing goes to /var/log.
    ngx || die "nginx failed to start (see $dir/error.log)"
    up() { master_pid >/dev/null && [ "$(workers_of "$(master_pid)")" -ge "$workers" ] &&
           (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
    wait_for 10 up || die "nginx not answering on 127.0.0.1:$port after 10 s (see $dir/error.log)"
    master_pid; echo
    ;;
  reload)
    ngx -s reload
    ;;
  upgrade)
    old=$(master_pid) || die "no pid file in $dir"
    kill -USR2 "$old"
    # The old master renames its pid file to nginx.pid.oldbin; the new one writes nginx.pid.
    new_ready() {
      local new; new=$(master_pid) || return 1
      [ "$new" != "$old" ] && alive "$new" && [ "$(workers_of "$new")" -ge 1 ]
    }
    wait_for 10 new_ready || die "new master did not start after USR2 (see $dir/error.log)"
    # WINCH: old workers stop accepting and finish gracefully; QUIT: then the old master exits.
    kill -WINCH "$old"
    kill -QUIT "$old"
    gone() { ! alive "$old"; }
    wait_for 10 gone || die "old master $old still running 10 s after QUIT"
    ;;
  stop)
    pid=$(master_pid) || die "no pid file in $dir"
    kill -QUIT "$pid"
    ;;
  pid)
    master_pid || die "no pid file in $dir"
    echo
    ;;
  *) usage ;;
esac
