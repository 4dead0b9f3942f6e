#!/usr/bin/env bash
# Installs every Debian 12 package halo's build and tests need, and nothing
# when they are all there already. Run as root (CI and fresh machines are).
#
#   tools/setup.sh          build + test dependencies
#   tools/setup.sh --bench  also the peers the benchmarks measure against
#   tools/setup.sh --runtime  only what the reference stack needs to run
#                           (an installed halo's stacks/reference/up calls it so)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1

packages=(
  # build; dpkg-dev and file: cpack -G DEB computes Depends with dpkg-shlibdeps
  build-essential cmake pkg-config dpkg-dev file
  liblua5.4-dev lua-cjson-dev libcurl4-openssl-dev libpq-dev libedit-dev zlib1g-dev
  # tests: real servers on 127.0.0.1 (nginx, a throwaway PostgreSQL 15
  # cluster; Docker comes from tools/docker-up.sh), a leak checker, openssl
  # for test certificates
  python3 procps nginx valgrind postgresql-15 openssl
  man-db                 # test_install renders the generated halo.1
  python3-psycopg2 curl  # tests/stack: the stand-in API's PostgreSQL driver; healthchecks
  libfaketime            # docker's clock skew (p:skew) preloads it into containers running the host's /usr
  lua-check              # e2e.test_luacheck: luacheck over scripts/, examples/, tests/ (.luacheckrc)
  python3-yaml           # e2e.test_ci_examples: the CI examples (examples/ci) parse
)
if [ "${1:-}" = "--runtime" ]; then
  packages=(python3 procps nginx postgresql-15 python3-psycopg2 curl libfaketime)
fi
if [ "${1:-}" = "--bench" ]; then
  packages+=(lua5.4 hyperfine wrk hey apache2-utils curl)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "tools/setup.sh: missing packages (${missing[*]}); run me as root to install them" >&2
  exit 1
fi

echo "tools/setup.sh: installing ${missing[*]}" >&2
# No init system here: a package's postinst must not start a service on a
# public port. A policy-rc.d that exits 101 forbids it for this install.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
