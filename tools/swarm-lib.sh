# tools/swarm-lib.sh — sourced by tools/swarm-up, swarm-node and swarm-down:
# which process is a node's daemon. Needs SWARM_DIR.

# true while pid runs. A dead process nobody has reaped yet (its parent may
# be a subreaper, or a pid 1 that never waits) still answers kill -0 and
# keeps its comm: only its state says it is gone.
running() {
  case "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" in Z|X|'') return 1 ;; *) return 0 ;; esac
}

# node_dockerd N: the pid in node N's pidfile (or FILE, when given) if it is
# a running dockerd whose command line names node N's data-root (a recycled
# pid is not ours); else nothing
node_dockerd() {
  local n=$1 f=${2:-$SWARM_DIR/node$1/dockerd.pid} p
  p=$(cat "$f" 2>/dev/null) || return 0
  [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = dockerd ] && running "$p" || return 0
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- "--data-root=$SWARM_DIR/node$n/data" && echo "$p" || true
}
