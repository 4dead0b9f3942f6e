#!/usr/bin/env bash
# tools/docker-up.sh — Docker for halo's tests and the reference stack, on a
# Debian 12 machine with no registry access and no init system.
#
# Idempotent: Docker Engine + docker-compose (v1) from Debian 12 packages
# (installed only if missing), dockerd with NO bridge / NO iptables / NO
# ip_forward (started only if `docker info` fails), and a local "host-root"
# base image, hostroot:local (built only if missing or the host's
# passwd/group/merged-usr layout changed; no registry), that runs host
# binaries from read-only bind mounts of the host's /usr and /etc. Every
# container is meant to run with network_mode: host, bound to 127.0.0.1.
#
#   sudo tools/docker-up.sh            # install (if needed), start dockerd (if needed), build image (if needed)
#   FORCE_IMAGE=1 tools/docker-up.sh   # rebuild hostroot:local even if present
#   SKIP_VERIFY=1 tools/docker-up.sh   # skip the python3/nginx/postgres smoke runs
#
# Safe to run again: every step checks first and does nothing when already
# done. When it starts dockerd it says so ("dockerd: starting", then
# "dockerd: up ... (recorded in PIDFILE)") and records the pid, so that
# tools/docker-down.sh stops exactly that daemon (by pid, never by name) and
# never one somebody else started. The tests (tests/engine/dockerenv.py) run
# it when `docker info` fails or the image is missing.
#
# Adapted from ../shared/stack-recipe/docker-up.sh (its README has the
# timings, the Engine API shapes and the pitfalls behind each step).
set -euo pipefail

IMAGE=${IMAGE:-hostroot:local}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/halo-dockerd.log}
DOCKERD_PIDFILE=${DOCKERD_PIDFILE:-/var/run/docker.pid}       # written by dockerd itself
STARTED_PIDFILE=${STARTED_PIDFILE:-/var/run/halo-dockerd.pid} # our copy (only if we started it)
SOCK=/var/run/docker.sock
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1  # needrestart: no service restarts, no prompts

# Host binaries inside containers: use Debian's docker CLI if the PATH one is missing.
DOCKER=${DOCKER:-$(command -v docker || echo /usr/bin/docker)}

ts()   { date +%s.%N; }
took() { awk -v a="$1" -v b="$(ts)" 'BEGIN{printf "%.2f", b-a}'; }
log()  { printf '[docker-up %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die()  { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"

# ---------------------------------------------------------------- 1. packages
PKGS=(docker.io containerd runc tini docker-compose nginx postgresql-15 curl iproute2 jq xxd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  t=$(ts)
  log "apt: installing ${missing[*]}"
  # Without an init system, postinst scripts would *start* nginx (0.0.0.0:80),
  # the postgresql main cluster (5432) and dockerd with default flags (docker0 +
  # iptables). A policy-rc.d that exits 101 stops all of that.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "apt: done in $(took "$t")s"
else
  log "apt: all packages already installed (${PKGS[*]})"
fi

# --------------------------------------------------------------- 2. dockerd
docker_ok() { timeout 5 "$DOCKER" info >/dev/null 2>&1; }

if docker_ok; then
  log "dockerd: already answering (pid $(cat "$DOCKERD_PIDFILE" 2>/dev/null || echo '?'))"
else
  t=$(ts)
  # A pidfile left by a dead dockerd is harmless, but one naming a live dockerd
  # that does not answer means something is wrong: refuse rather than kill.
  if [ -s "$DOCKERD_PIDFILE" ]; then
    oldpid=$(cat "$DOCKERD_PIDFILE")
    if [ -d "/proc/$oldpid" ] && [ "$(cat "/proc/$oldpid/comm" 2>/dev/null)" = dockerd ]; then
      die "dockerd pid $oldpid is alive but 'docker info' does not answer; see $DOCKERD_LOG"
    fi
    rm -f "$DOCKERD_PIDFILE"
  fi
  # dockerd 20.10 uses a system containerd if /run/containerd/containerd.sock
  # exists, else it supervises its own. A stale socket (no listener) would hang it.
  if [ -S /run/containerd/containerd.sock ] && ! timeout 3 ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then
    log "dockerd: removing stale /run/containerd/containerd.sock"; rm -f /run/containerd/containerd.sock
  fi
  [ -f /etc/docker/daemon.json ] && log "dockerd: NOTE /etc/docker/daemon.json exists; keys that repeat a flag below make dockerd refuse to start"
  log "dockerd: starting (log $DOCKERD_LOG)"
  # setsid: own session, so the caller's job control / process-group kill does not take it down.
  setsid /usr/sbin/dockerd \
      --bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
      --userland-proxy=false \
      --host="unix://$SOCK" --pidfile="$DOCKERD_PIDFILE" \
      >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 120); do docker_ok && break; sleep 0.25; done
  docker_ok || { tail -n 30 "$DOCKERD_LOG" >&2; die "dockerd did not answer within 30s"; }
  cp "$DOCKERD_PIDFILE" "$STARTED_PIDFILE"
  log "dockerd: up in $(took "$t")s, pid $(cat "$DOCKERD_PIDFILE") (recorded in $STARTED_PIDFILE)"
fi

# No bridge may exist. dockerd with --bridge=none does not create docker0, and
# removes a "bridge" network left in /var/lib/docker by an earlier run.
if ip link show docker0 >/dev/null 2>&1; then
  log "WARNING: docker0 exists; deleting it (ip link del docker0)"
  ip link del docker0
fi
if "$DOCKER" network ls --format '{{.Name}} {{.Driver}}' | grep -qw bridge; then
  log "WARNING: a docker network with the bridge driver exists:"; "$DOCKER" network ls >&2
fi

# --------------------------------------------------------- 3. hostroot image
# The image is a few empty mount points; everything executable comes from the
# host's /usr (bind-mounted read-only). Debian 12 is merged-/usr, so /bin /sbin
# /lib /lib64 /lib32 /libx32 are mirrored as the same symlinks the host has;
# on a non-merged host they become empty dirs that must be bind-mounted too.
PG_UID=$(id -u postgres); PG_GID=$(id -g postgres)
SPEC="v4 pg=$PG_UID:$PG_GID ids=$(cat /etc/passwd /etc/group | sha256sum | cut -c1-16) $(for d in bin sbin lib lib64 lib32 libx32; do printf '%s=%s ' "$d" "$(readlink "/$d" || echo dir)"; done)"
SPEC_HASH=$(printf '%s' "$SPEC" | sha256sum | cut -c1-16)

have=$("$DOCKER" image inspect -f '{{index .Config.Labels "recipe.spec"}}' "$IMAGE" 2>/dev/null || true)
have_id=$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$SPEC_HASH" ] && [ -z "${FORCE_IMAGE:-}" ]; then
  log "image: $IMAGE already built (spec $SPEC_HASH)"
else
  t=$(ts)
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  r=$tmp/rootfs; mkdir -p "$r"
  (cd "$r"
   mkdir -p usr etc proc sys dev run root home srv data var/lib var/log var/cache var/tmp tmp pgdata
   for d in bin sbin lib lib64 lib32 libx32; do
     if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$d"; elif [ -d "/$d" ]; then mkdir -p "$d"; fi
   done
   ln -s ../run var/run
   chmod 1777 tmp var/tmp
   chmod 700 root
   # dockerd resolves `user: NAME` from the IMAGE's /etc/passwd, before any bind
   # mount is applied, so the host's passwd/group are copied in (the host /etc
   # mount shadows them at run time; both agree because the image is built here).
   cp -p /etc/passwd /etc/group etc/
   # Named volumes are seeded from the image's mount point (owner + mode), so a
   # volume mounted at /pgdata starts out owned by postgres, mode 0700.
   chown "$PG_UID:$PG_GID" pgdata; chmod 700 pgdata)
  tar --numeric-owner -C "$r" -cf "$tmp/rootfs.tar" .
  "$DOCKER" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change "LABEL recipe.spec=$SPEC_HASH" \
      --change 'LABEL recipe.note=empty-mountpoints;bind-mount-host-/usr-and-/etc-read-only' \
      --change 'CMD ["/bin/sh"]' \
      "$tmp/rootfs.tar" "$IMAGE" >/dev/null
  rm -rf "$tmp"; trap - EXIT
  old_id=$have_id; new_id=$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE")
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then "$DOCKER" image rm "$old_id" >/dev/null 2>&1 || true; fi
  log "image: built $IMAGE ($("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE") bytes) in $(took "$t")s"
fi

# ------------------------------------------------------------- 4. smoke test
if [ -z "${SKIP_VERIFY:-}" ]; then
  t=$(ts)
  HR=(--rm --network none -v /usr:/usr:ro -v /etc:/etc:ro "$IMAGE")
  "$DOCKER" run "${HR[@]}" /usr/bin/python3 -c 'import sys; print("python3", sys.version.split()[0])'
  "$DOCKER" run "${HR[@]}" /usr/sbin/nginx -v 2>&1
  "$DOCKER" run --user postgres "${HR[@]}" /bin/sh -c 'echo "postgres as $(id -un) uid=$(id -u): $(/usr/lib/postgresql/15/bin/postgres --version)"'
  log "verify: host binaries run in $IMAGE ($(took "$t")s for 3 containers)"
fi

log "ready: $("$DOCKER" version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}), server {{.Server.Version}} (API {{.Server.APIVersion}})')"
