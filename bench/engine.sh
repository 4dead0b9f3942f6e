#!/usr/bin/env bash
# Engine benchmarks, printed as ratios against peers measured in the same run:
#  1. whole-process start: `halo eval 'return 1'` vs `lua5.4 -e 'return 1'` (target: within 3x)
#  2. scheduler: time.sleep(0) yields per second, against plain coroutine
#     resume/yield in lua5.4 (target: 100,000/s or better)
# Needs tools/setup.sh --bench (lua5.4, hyperfine) and a built build/halo.
set -euo pipefail
cd "$(dirname "$0")/.."
HALO=${HALO:-build/halo}
command -v lua5.4 >/dev/null && command -v hyperfine >/dev/null || {
  echo "bench/engine.sh: run tools/setup.sh --bench first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== start-up: halo eval vs lua5.4 -e (300 runs each, hyperfine -N)"
hyperfine -N --warmup 20 --runs 300 --export-json "$tmp/start.json" \
  "$HALO eval 'return 1'" "lua5.4 -e 'return 1'" >/dev/null 2>&1
python3 - "$tmp/start.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
halo, lua = r[0]["mean"], r[1]["mean"]
print(f"halo eval 'return 1'   {halo*1e3:7.3f} ms")
print(f"lua5.4 -e 'return 1'   {lua*1e3:7.3f} ms")
print(f"ratio halo/lua5.4      {halo/lua:7.2f}x   (target: <= 3x)")
PY

N=1000000
echo "== scheduler: $N yields"
halo_rate=$("$HALO" eval "local t0 = time.mono()
for i = 1, $N do time.sleep(0) end
return math.floor($N / (time.mono() - t0))")
lua_rate=$(lua5.4 -e "local co = coroutine.wrap(function() while true do coroutine.yield() end end)
local t0 = os.clock()
for i = 1, $N do co() end
print(math.floor($N / (os.clock() - t0)))")
echo "halo time.sleep(0)      $halo_rate yields/s (target: >= 100000)"
echo "lua5.4 resume/yield     $lua_rate yields/s (bare coroutine switch, no scheduler)"
python3 -c "print(f'ratio halo/lua5.4      {$halo_rate/$lua_rate:7.2f}x of a bare coroutine switch')"
