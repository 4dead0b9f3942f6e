#!/usr/bin/env bash
# tools/docker-down.sh — stop the dockerd that tools/docker-up.sh started, by
# the pid it recorded (never by name); a dockerd somebody else started is left
# alone. Containers should be down first (docker-compose -p PROJECT down -v);
# dockerd stops its own supervised containerd when it exits.
# Adapted from ../shared/stack-recipe/docker-down.sh.
set -euo pipefail
PIDFILE=${STARTED_PIDFILE:-/var/run/halo-dockerd.pid}
[ -s "$PIDFILE" ] || { echo "no $PIDFILE: nothing started by tools/docker-up.sh"; exit 0; }
pid=$(cat "$PIDFILE")
if [ -d "/proc/$pid" ] && [ "$(cat /proc/$pid/comm)" = dockerd ]; then
  kill -TERM "$pid"
  for _ in $(seq 1 60); do [ -d "/proc/$pid" ] || break; sleep 0.5; done
  [ -d "/proc/$pid" ] && { echo "dockerd $pid still alive after 30s" >&2; exit 1; }
  echo "dockerd $pid stopped"
else
  echo "pid $pid is not a running dockerd (stale pidfile)"
fi
rm -f "$PIDFILE"
