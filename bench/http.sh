#!/usr/bin/env bash
# HTTP client benchmark, printed as ratios against peers measured in the same
# run (issue 3, "Performance"). See bench/README.md, "HTTP client".
#  1. throughput: requests/s against a throwaway nginx (one worker) serving a
#     100-byte static file on 127.0.0.1, 50 concurrent connections, 10 s
#     each: wrk -t1 (the reference; run first and last, the mean counts),
#     halo (bench/http_load.lua: 50 tasks, one http.client), hey, ab -k, 50
#     parallel bash loops of curl (a process per request: the floor), and,
#     for information, halo with record = false (no per-request history).
#     Targets: halo >= 0.6x wrk (aim 0.8x), halo ahead of hey.
#  2. memory: 1,000 halo tasks each send one request to bench/slow_server.py
#     (answers after 5 s). Targets: halo's peak RSS under 64 MiB, all 1,000
#     answered; the server reports how many were truly in flight at once.
# Targets are printed (PASS/MISS), not asserted: the script exits 0 unless a
# tool failed to run. Needs tools/setup.sh --bench and a built build/halo.
#
#   bench/http.sh                       the full run (about 90 s)
#   DURATION=3 bench/http.sh            shorter throughput runs
#   HALO=path/to/halo bench/http.sh     another build
set -uo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
HALO=${HALO:-build/halo}
DURATION=${DURATION:-10}   # seconds per throughput run
CONC=${CONC:-50}           # concurrent connections
INFLIGHT=${INFLIGHT:-1000} # requests held at the slow endpoint
SLOW_DELAY=${SLOW_DELAY:-5}
RSS_LIMIT_MIB=64

die() { echo "bench/http.sh: $*" >&2; exit 1; }
for tool in nginx wrk hey ab curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found; run tools/setup.sh --bench first"
done
[ -x "$HALO" ] || die "$HALO not built; cmake -S . -B build && cmake --build build -j2"
# The interpreter itself, not a wrapper (pyenv's shim would outlive a kill).
PY=$(python3 -c 'import sys; print(sys.executable)')
NGINX=$(command -v nginx)

# 1,000 client sockets plus the server's: raise the soft descriptor limit.
want_fds=$((INFLIGHT * 2 + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$want_fds" ]; then ulimit -n "$want_fds"
  else ulimit -n "$hard"; echo "note: descriptor limit is $hard (hard); the in-flight test may fail" >&2; fi
fi

tmp=$(mktemp -d)
nginx_pid= slow_pid= cur_pid=
pids=()
cleanup() {
  # Only the processes this script started, by their pid.
  for p in $cur_pid "${pids[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
    kill -QUIT "$nginx_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nginx_pid" 2>/dev/null
  fi
  if [ -n "$slow_pid" ] && kill -0 "$slow_pid" 2>/dev/null; then kill "$slow_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- nginx on 127.0.0.1 ---------------------------------------------------------
# One worker: halo's event loop is single-threaded too, so on 2 cores the
# server gets one core and the client under test the other.
mkdir -p "$tmp/nginx/html" "$tmp/nginx/logs"
chmod 755 "$tmp" "$tmp/nginx" "$tmp/nginx/html" # a root master's workers run as nobody
head -c 100 /dev/zero | tr '\0' 'x' > "$tmp/nginx/html/small.txt"
chmod 644 "$tmp/nginx/html/small.txt"
port=$(free_port)
cat > "$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  keepalive_timeout 60s;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$port;
    root $tmp/nginx/html;
  }
}
EOF
# daemon off: the pid we hold is the master's.
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" \
  >"$tmp/nginx/stdout" 2>&1 &
nginx_pid=$!
URL=http://127.0.0.1:$port/small.txt
for _ in $(seq 50); do
  curl -sf -o /dev/null "$URL" && break
  kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/nginx/logs/error.log" "$tmp/nginx/stdout" >&2; die "nginx did not start"; }
  sleep 0.1
done
curl -sf -o /dev/null "$URL" || die "nginx does not answer on $URL"

failed=()
results=$tmp/results.tsv # label, requests, seconds, rps, errors, peak RSS KiB, note
: > "$results"

# parse TOOL LABEL FILE RSS_KIB [ARGS...]: one results row from a tool's output
parse() {
  "$PY" - "$@" >> "$results" <<'PY'
import json, re, sys
tool, label, path, rss, *extra = sys.argv[1:]
t = open(path).read()
def num(pattern, cast=float):
    return cast(re.search(pattern, t).group(1))
if tool == "wrk":
    n = num(r"(\d+) requests in", int)
    secs, unit = re.search(r"requests in ([\d.]+)(us|ms|s|m)\b", t).groups()
    secs = float(secs) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[unit]
    rps = num(r"Requests/sec:\s+([\d.]+)")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    errs = (int(m.group(1)) if m else 0) + (sum(map(int, e.groups())) if e else 0)
    ok, note = n - errs, "-t1 -c50"
elif tool == "halo":
    r = json.loads(t.strip().splitlines()[-1])
    if "unsupported" in r:
        print(f"{label}: skipped, this halo lacks an option ({r['unsupported']})", file=sys.stderr)
        sys.exit(0)
    ok, secs, rps, errs = r["requests"], r["seconds"], r["rps"], r["errors"]
    note = extra[0] if extra else ""
    if r.get("first_error"): note += f"; first error: {r['first_error']}"
elif tool == "hey":
    secs = num(r"Total:\s+([\d.]+) secs")
    rps = num(r"Requests/sec:\s+([\d.]+)")
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", t)}
    ok = sum(n for c, n in codes.items() if 200 <= c < 300)
    errs = sum(n for c, n in codes.items() if not 200 <= c < 300)
    m = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)+)", t)
    if m: errs += sum(int(x) for x in re.findall(r"\[(\d+)\]", m.group(1)))
    note = "-c 50 -z"
elif tool == "ab":
    n = num(r"Complete requests:\s+(\d+)", int)
    secs = num(r"Time taken for tests:\s+([\d.]+) seconds")
    rps = num(r"Requests per second:\s+([\d.]+)")
    m = re.search(r"Non-2xx responses:\s+(\d+)", t)
    errs = num(r"Failed requests:\s+(\d+)", int) + (int(m.group(1)) if m else 0)
    ok, note = n - errs, "-k, one thread"
elif tool == "curl":
    codes = t.split()
    secs = (int(extra[1]) - int(extra[0])) / 1e6
    ok = sum(1 for c in codes if c.startswith("2"))
    errs, rps = len(codes) - ok, ok / secs
    note = f"{extra[2]} bash loops, a process per request"
print(f"{label}\t{ok}\t{secs:.2f}\t{rps:.0f}\t{errs}\t{rss}\t{note}")
PY
}

# watch_rss PID: poll the kernel's high-water mark of its resident set
# (VmHWM) until it exits; the peak lands in RSS_PEAK (KiB). It runs in this
# shell, not in $(...), so an interrupt is handled between two polls.
watch_rss() {
  local pid=$1 hwm
  RSS_PEAK=0
  while kill -0 "$pid" 2>/dev/null; do
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$hwm" ] && [ "$hwm" -gt "$RSS_PEAK" ] && RSS_PEAK=$hwm
    sleep 0.05
  done
}

# run LABEL TOOL COMMAND...: run it, keep its output and peak RSS, parse it
run() {
  local label=$1 tool=$2; shift 2
  echo "-- $*"
  local out="$tmp/$(echo "$label" | tr -c 'a-z0-9\n' _).out" pid rss rc
  "$@" > "$out" 2>&1 &
  pid=$! cur_pid=$!
  watch_rss "$pid"; rss=$RSS_PEAK
  wait "$pid"; rc=$?
  cur_pid=
  if [ "$rc" = 0 ]; then
    parse "$tool" "$label" "$out" "$rss" "${EXTRA[@]}" || { failed+=("$label"); cat "$out" >&2; }
  else
    failed+=("$label"); cat "$out" >&2
  fi
}

echo "== $(date -u '+%F %H:%M UTC'), $(uname -sr), $(nproc) cores, $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(curl --version | head -1 | grep -o 'libcurl/[^ ]*')$(
  [ -r /proc/loadavg ] && echo ", load average $(cut -d' ' -f1 /proc/loadavg)")"
echo "== throughput: GET $URL (100 bytes), $CONC connections, ${DURATION} s each"

# wrk: -t1. halo drives all its connections from one thread; one wrk thread
# is the same shape, and leaves the second core to nginx's single worker
# (-t2 would put three busy threads on two cores). It runs first and last:
# the reference is the mean of the two, and their spread shows how steady
# the machine was.
EXTRA=()
run "wrk (first)" wrk wrk -t1 -c"$CONC" -d"${DURATION}s" "$URL"
EXTRA=("$CONC tasks, one http.client")
run halo halo "$HALO" exec bench/http_load.lua "$URL" "$CONC" "$DURATION"
EXTRA=()
run hey hey hey -c "$CONC" -z "${DURATION}s" "$URL"
run ab ab ab -k -c "$CONC" -t "$DURATION" -n 10000000 "$URL"
# For information, not a target: the same load with record = false (kept out
# of the per-request history), to show what the history costs.
EXTRA=("same, record = false (info)")
run "halo norecord" halo "$HALO" exec bench/http_load.lua "$URL" "$CONC" "$DURATION" norecord

# curl: 50 bash loops side by side, one curl process (and one connection)
# per request -- the same concurrency as the others, and the floor.
echo "-- $CONC parallel bash loops of: curl -s -o /dev/null -w '%{http_code}\\n' URL"
curl_loop() {
  local end=$1 out=$2
  while [[ ${EPOCHREALTIME/./} -lt $end ]]; do
    curl -s -o /dev/null -w '%{http_code}\n' "$URL" >> "$out"
  done
}
start_us=${EPOCHREALTIME/./}
end_us=$((start_us + DURATION * 1000000))
pids=()
for i in $(seq "$CONC"); do curl_loop "$end_us" "$tmp/curl.$i" & pids+=($!); done
wait "${pids[@]}"
pids=()
stop_us=${EPOCHREALTIME/./}
if cat "$tmp"/curl.* > "$tmp/curl.out" 2>/dev/null && [ -s "$tmp/curl.out" ]; then
  parse curl "curl loop" "$tmp/curl.out" - "$start_us" "$stop_us" "$CONC" || failed+=(curl)
else failed+=(curl); fi

EXTRA=()
run "wrk (last)" wrk wrk -t1 -c"$CONC" -d"${DURATION}s" "$URL"

echo
"$PY" - "$results" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {r[0]: r for r in rows}
wrks = [float(r[3]) for r in rows if r[0].startswith("wrk")]
wrk = sum(wrks) / len(wrks) if wrks else None
order = ["wrk (first)", "wrk (last)", "halo", "halo norecord", "hey", "ab", "curl loop"]
rows.sort(key=lambda r: order.index(r[0]) if r[0] in order else len(order))
print(f"{'tool':<13} {'requests/s':>11} {'vs wrk':>7} {'requests':>10} {'errors':>7} {'peak RSS':>9}  notes")
for tool, n, secs, rps, errs, rss, note in rows:
    r = float(rps) / wrk if wrk else None
    ratio = "-" if r is None else f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"
    rss = f"{int(rss) / 1024:.1f} MiB" if rss.isdigit() and int(rss) else "-"
    print(f"{tool:<13} {float(rps):>11,.0f} {ratio:>7} {int(n):>10,} {int(errs):>7} {rss:>9}  {note}")
if wrk:
    print(f"{'wrk (mean)':<13} {wrk:>11,.0f}   1.00x {'':>10} {'':>7} {'':>9}  the reference for the ratios")
print()
if len(wrks) == 2 and abs(wrks[0] - wrks[1]) / max(wrks) > 0.2:
    print(f"note    wrk's two runs differ by {abs(wrks[0] - wrks[1]) / max(wrks):.0%}: the machine was not"
          " steady, read the ratios as rough")
def target(name, value, ok, extra=""):
    print(f"target  {name:<30} {value:<12} {'PASS' if ok else 'MISS'}{extra}")
if wrk and "halo" in by:
    halo = float(by["halo"][3])
    r = halo / wrk
    target("halo >= 0.6x wrk", f"{r:.2f}x", r >= 0.6, f"   (aim 0.8x: {'reached' if r >= 0.8 else 'not reached'})")
    if "hey" in by:
        hey = float(by["hey"][3])
        target("halo ahead of hey", f"{halo / hey:.2f}x hey", halo > hey)
    if int(by["halo"][4]):
        print(f"note    halo had {by['halo'][4]} failed requests")
PY

# ---- memory: requests in flight to a slow endpoint ------------------------------
echo
echo "== memory: $INFLIGHT tasks, one request each (timeout 30 s), server answers after ${SLOW_DELAY} s"
"$PY" bench/slow_server.py --delay "$SLOW_DELAY" --port-file "$tmp/slow.port" --stats "$tmp/slow.json" \
  > "$tmp/slow.out" 2>&1 &
slow_pid=$!
for _ in $(seq 50); do [ -s "$tmp/slow.port" ] && break; sleep 0.1; done
if [ ! -s "$tmp/slow.port" ]; then
  cat "$tmp/slow.out" >&2; failed+=(slow_server)
else
  SLOW_URL=http://127.0.0.1:$(cat "$tmp/slow.port")/slow
  echo "-- halo exec bench/http_load.lua $SLOW_URL $INFLIGHT once"
  "$HALO" exec bench/http_load.lua "$SLOW_URL" "$INFLIGHT" once > "$tmp/inflight.out" 2>&1 &
  halo_pid=$! cur_pid=$!
  watch_rss "$halo_pid"; peak_kib=$RSS_PEAK
  wait "$halo_pid"; halo_rc=$?
  cur_pid=
  kill "$slow_pid"; wait "$slow_pid" 2>/dev/null; slow_pid=
  if [ "$halo_rc" != 0 ] || [ ! -s "$tmp/slow.json" ]; then
    cat "$tmp/inflight.out" "$tmp/slow.out" >&2; failed+=(inflight)
  else
    "$PY" - "$tmp/inflight.out" "$tmp/slow.json" "$peak_kib" "$INFLIGHT" "$RSS_LIMIT_MIB" <<'PY' || failed+=(inflight)
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
s = json.load(open(sys.argv[2]))
peak_mib = int(sys.argv[3]) / 1024
want, limit = int(sys.argv[4]), float(sys.argv[5])
print(f"halo peak RSS (VmHWM)          {peak_mib:6.1f} MiB")
print(f"responses                      {r['requests']} of {want} ok, {r['errors']} failed, {r['seconds']:.1f} s")
print(f"server: peak in flight         {s['peak_in_flight']} requests on {s['peak_connections']} connections"
      f" ({s['connections']} connections in all)")
print()
def target(name, value, ok, extra=""):
    print(f"target  {name:<30} {value:<12} {'PASS' if ok else 'MISS'}{extra}")
inflight = s["peak_in_flight"]
target(f"peak RSS < {limit:.0f} MiB", f"{peak_mib:.1f} MiB", peak_mib < limit)
target(f"all {want} answered", f"{r['requests']}/{want}", r["requests"] == want,
       f"   (first error: {r['first_error']})" if r.get("first_error") else "")
target(f"{want} in flight at once", f"{inflight}/{want}", inflight >= want,
       "   (halo caps connections at 512: CURLMOPT_MAX_TOTAL_CONNECTIONS; curl queued the rest)"
       if inflight == 512 < want else "")
PY
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo
  echo "bench/http.sh: failed to run: ${failed[*]}" >&2
  exit 1
fi
exit 0
