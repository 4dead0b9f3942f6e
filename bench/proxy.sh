#!/usr/bin/env bash
# halo proxy against direct connections on 127.0.0.1, in the same run (issue
# 15, item 1): added latency p50/p99 on a keep-alive connection, round trips
# per second and bulk throughput as proxy/direct ratios, RSS per idle
# connection. See bench/README.md, "Fault proxy". Targets are printed
# (PASS/MISS), not asserted. Needs python3 and a built build/halo.
#
#   bench/proxy.sh                          the full run (about 20 s)
#   ROUNDS=5000 BULK_MIB=256 bench/proxy.sh shorter
#   HALO=path/to/halo bench/proxy.sh        another build
#   PIN=1 bench/proxy.sh                    bulk again, the proxy alone on a core
set -uo pipefail
cd "$(dirname "$0")/.."
export HALO=${HALO:-build/halo}
[ -x "$HALO" ] || { echo "bench/proxy.sh: $HALO not built" >&2; exit 1; }
ulimit -n 8192 2>/dev/null || true
exec python3 bench/proxy_bench.py
