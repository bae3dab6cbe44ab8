#!/usr/bin/env bash
# The restart actions of bench/restart.sh, as one command a load generator can run mid-load
# (graceful-bench --exec '...'; restart.sh runs the same command under wrk).
#
# Usage: bench/action.sh ACTION ENV_FILE
#   ENV_FILE is written by start_server (bench/lib.sh) and names the server, its pid file and
#   how to start it again. ACTION is one of:
#     sighup          kill -HUP the current pid (graceful-server's upgrade, tableflip's upgrade)
#     kill9-restart   kill -9, then start the same command again once the process is gone
#     term-restart    kill -TERM, wait (15 s at most) for the exit, start the same command again
#     nginx-upgrade   nginx binary upgrade: USR2, WINCH + QUIT the old master
#     nginx-reload    nginx -s reload
# Prints nothing on success; exit 1 (with a reason on stderr) if the action could not be done.
set -euo pipefail
PROG=action.sh
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
action=$1 env_file=$2
# shellcheck disable=SC1090
source "$env_file"
# The load generator may not report the command's status: leave it where restart.sh looks.
trap 'echo $? >"$STATE/$SERVER_NAME.action-rc"' EXIT
pid=$(tr -d '[:space:]' <"$SERVER_PIDFILE" 2>/dev/null) || die "no pid file $SERVER_PIDFILE"

case "$action" in
  sighup) kill -HUP "$pid" ;;
  kill9-restart)
    kill -KILL "$pid"
    wait_gone "$pid" 5 || die "pid $pid survived SIGKILL for 5 s"
    launch_server "$env_file"
    ;;
  term-restart)
    kill -TERM "$pid"
    wait_gone "$pid" 15 || die "pid $pid still running 15 s after SIGTERM"
    launch_server "$env_file"
    ;;
  nginx-upgrade) "$BENCH_DIR/peers/nginx/nginx.sh" upgrade "$NGINX_DIR" ;;
  nginx-reload) "$BENCH_DIR/peers/nginx/nginx.sh" reload "$NGINX_DIR" ;;
  *) die "unknown action $action" ;;
esac
