"""Network and server faults, each against a real server this file starts
on 127.0.0.1 (or a Unix socket in a temp dir) and then breaks, each run as a
real check through `halo run --checks DIR --format json`, next to a trivial
canary check that must still PASS in the same run.

What every scenario asserts:

  * the fault check ends as a clear ERROR or FAIL — or, where the script
    handles `nil, err`, err.kind is the documented kind and err.message
    names the primitive (GET, query on, docker, compose) and the target
    (the URL, host:port, socket);
  * it ends within its deadline plus a stated grace: every run passes
    `--grace GRACE`, so the hard deadline is timeout + GRACE, and the
    assertions allow SLACK seconds on top of that (process start, report).
    These are upper bounds with generous margins, not benchmarks;
  * the canary PASSes, and nothing halo started outlives the run (halotest's
    leftover tracking), and the servers are stopped by pid.

Faults: a body past max_body (an endless chunked stream, 1 MiB cap and the
64 MiB default), a gzip bomb (4 GiB of zeros as 4 MB of gzip, as 6.7 KB of
gzip-of-gzip, and as Transfer-Encoding: gzip), a server that drips one byte
every 3 s (headers and body), a redirect loop and redirects to file://,
ftp://, gopher://, dict://, telnet:// (listeners on those ports prove
nothing was fetched), a listener whose accept queue is full (connect hangs),
100k response headers, pg_sleep(3600) past the deadline (cancelled on the
server, no backend of the test's role left), a billion-row result (too_large
quickly; the worker's peak RSS is measured from /proc), PostgreSQL restarted
mid-check (next query: a clear error naming the server; reconnect works),
the Docker daemon "stopped" mid-check (a Unix-socket proxy in front of the
real daemon, killed by its pid: an in-flight call and a wait in progress
both end), and a compose client that hangs or floods its output (a fake
docker-compose first in PATH: killed at the timeout with its process group,
output capped).

Already covered elsewhere, at the `halo exec` level, and only re-run here
as checks beside a canary (with what this file adds): test_http.Errors
(too_large with a Content-Length — here an endless chunked body and the
default cap; the redirect loop, file:// and ftp:// to a closed port — here
also FILE://, gopher://, dict://, telnet:// to listening ports; the full
backlog connect timeout — here also cut by the check's deadline; the drip
with a 0.5 s timeout — here headers and body, and the deadline), test_sql
(pg_sleep(30) cancelled at a 2 s deadline — here per role, idle backends
too; max_rows on 100M rows with RSS — here 1e9 rows, max_bytes and the
memory cap; the server stopped mid-query — here a restart on the same port
and a reconnect) and test_proc (group kill, SIGKILL escalation, max_output
on small outputs — here through docker.compose with a flooding client).

The billion-row query as one would first write it, `SELECT g FROM generate_series(1,
1000000000) g`, is not answered with too_large: PostgreSQL materialises a
set-returning function in FROM before it sends the first row, so nothing
reaches halo's caps and the check's deadline ends it (and cancels it on the
server). The streamed form (`SELECT generate_series(...)`) hits the caps.

Tests marked "Regression test (fixed engine bug)" reproduced engine bugs
this file found; they assert the correct behaviour.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_faults
"""
import json
import os
import random
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import dockerenv
from halotest import HALO, SOURCE, HaloTestCase, descendants_of, is_alive, logs, parse_report, start
from pgcluster import PG_BIN, PgCluster

SERVERS = os.path.join(SOURCE, "tests", "servers")
FAULT_SERVER = os.path.join(SERVERS, "fault_server.py")
UNIX_PROXY = os.path.join(SERVERS, "unix_proxy.py")

GRACE = 2  # --grace of every run: the hard deadline is a check's timeout + GRACE
SLACK = 3  # seconds allowed past a deadline for process start-up and the report

MiB = 1 << 20

# pids of the servers this file started (not halo's leftovers)
OUR_SERVERS = set()

CANARY = """\
local time = require "time"
return {
  id = "canary", title = "a trivial check in the same run", timeout = 10,
  run = function(t)
    time.sleep(0.05)
    t:expect(1 + 1 == 2, "arithmetic broke")
  end,
}
"""

# Prepended to every fault check.
PRELUDE = """\
local http, time, task, json = require "http", require "time", require "task", require "json"
local eventually = require "eventually"
-- the test's rendezvous server: mark(name) tells the test, await(name, s) waits for it
local function mark(stack, name) http.get(stack.rv .. "/set/" .. name, { record = false, timeout = 5 }) end
local function await(stack, name, seconds)
  return (eventually{ timeout = seconds, interval = 0.05 }(function()
    local r = http.get(stack.rv .. "/is/" .. name, { record = false, timeout = 5 })
    return r ~= nil and r.status == 200
  end))
end
local function outcome(res, err, t0)
  return { ok = res ~= nil, kind = err and err.kind, message = err and err.message, url = err and err.url,
           took = time.mono() - t0 }
end
"""


def lua(value):
    """A Python value as a Lua literal (for stack files)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "{ " + ", ".join(lua(v) for v in value) + " }"
    if isinstance(value, dict):
        return "{ " + ", ".join("[%s] = %s" % (json.dumps(k), lua(v)) for k, v in value.items()) + " }"
    raise TypeError(f"no Lua literal for {value!r}")


def wait_for_file(path, proc, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit {proc.poll()})")
        time.sleep(0.02)
    with open(path) as f:
        return f.read().strip()


def stop_process(proc, sig=signal.SIGTERM):
    """Stops a server this file started, by its pid."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def processes_with_args(*argv):
    """Pids of live (non-zombie) processes whose argv is exactly argv."""
    want = b"\0".join(a.encode() for a in argv) + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd == want and is_alive(int(name)):
            found.append(int(name))
    return found


# ---- servers and instruments -------------------------------------------------------------

class FaultServer:
    """tests/servers/fault_server.py as a child process."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="halo-fault-")
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen([sys.executable, FAULT_SERVER, "--port-file", port_file],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        OUR_SERVERS.add(self.proc.pid)
        try:
            self.port = int(wait_for_file(port_file, self.proc, "the fault server"))
        except BaseException:
            self.stop()
            raise
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self):
        stop_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Rendezvous:
    """An in-process HTTP server the checks use to talk to the test:
    GET /set/NAME marks NAME, GET /is/NAME is 200 once NAME is marked
    (404 before). The test waits with wait(NAME) and marks with set(NAME)."""

    def __init__(self):
        self.events = {}
        self.lock = threading.Lock()
        rv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                _, verb, name = (self.path.split("/", 2) + ["", ""])[:3]
                ev = rv.event(name)
                if verb == "set":
                    ev.set()
                    code = 200
                else:
                    code = 200 if ev.is_set() else 404
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def event(self, name):
        with self.lock:
            return self.events.setdefault(name, threading.Event())

    def wait(self, name, timeout):
        return self.event(name).wait(timeout)

    def set(self, name):
        self.event(name).set()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class CountingListener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts
    (and answers each with a minimal HTTP 200): a redirect target that
    proves whether the client ever came."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._halt.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            try:
                conn.settimeout(1)
                try:
                    conn.recv(4096)
                except OSError:
                    pass
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\ncounted\n")
            except OSError:
                pass
            finally:
                conn.close()

    def stop(self):
        self._halt.set()
        self.thread.join(2)
        self.sock.close()


class NeverAccepts:
    """A listener with backlog 1 whose accept queue is filled by the test's
    own connections: the kernel drops further SYNs, so a connect hangs."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(16):
            if self._hangs():
                return
        self.close()
        raise RuntimeError("could not fill the accept queue of a backlog-1 listener")

    def _hangs(self):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        self.fillers.append(c)
        try:
            c.connect(("127.0.0.1", self.port))
            return False
        except BlockingIOError:
            pass
        _, writable, _ = select.select([], [c], [], 0.3)
        return not writable  # still connecting after 0.3 s: the queue is full

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


class PeakRss(threading.Thread):
    """Samples VmHWM (peak RSS) of every halo process of a run — the runner
    and its workers — from /proc while it runs."""

    def __init__(self, running):
        super().__init__(daemon=True)
        self.running = running
        self.exe = os.path.realpath(HALO)
        self.peaks = {}
        self._halt = threading.Event()
        self.start()

    def sample(self):
        for pid in [self.running.pid] + descendants_of(self.running.pid):
            try:
                if os.readlink(f"/proc/{pid}/exe") != self.exe:
                    continue
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            kb = int(line.split()[1])
                            self.peaks[pid] = max(self.peaks.get(pid, 0), kb * 1024)
            except OSError:
                continue

    def run(self):
        while not self._halt.is_set() and self.running.proc.poll() is None:
            self.sample()
            self._halt.wait(0.02)

    def stop(self):
        self._halt.set()
        self.join(2)

    @property
    def worker_peak(self):
        """The largest peak RSS among the workers (not the runner)."""
        return max([v for p, v in self.peaks.items() if p != self.running.pid] or [0])


# ---- the test case ---------------------------------------------------------------------

class FaultCase(HaloTestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")

    def run_checks(self, checks, stack, args=(), env=None, during=None, timeout=150, strict=True):
        """Runs {filename: source} (each given the PRELUDE) plus the canary
        as one `halo run --format json --grace GRACE`; asserts the canary
        PASSed and that no process halo started is left. Returns (report,
        PeakRss); `during(running)` runs while halo does. `strict`: no check
        may end by a memory kill, the hard deadline or a worker crash."""
        files = {name: PRELUDE + src for name, src in checks.items()}
        files["99-canary.lua"] = CANARY
        d = self.checks_dir(files)
        stack_path = self.tmp_path("stack.lua")
        with open(stack_path, "w") as f:
            f.write("return " + lua({"allow_faults": True, **stack}) + "\n")
        h = start(["run", "--checks", d, "--stack", stack_path, "--format", "json", "--grace", str(GRACE),
                   *args], env=env)
        rss = PeakRss(h)
        try:
            if during:
                during(h)
            res = h.finish(timeout=timeout)
            self.assertNothingLeft(h)
        finally:
            h.kill()
            rss.stop()
        rep = parse_report(res.out, res)
        self.assertCheck(rep, "canary", "PASS")
        for c in rep["checks"] if strict else []:
            self.assertNotRegex(c["message"] or "", r"memory limit|hard deadline|worker crashed|was killed",
                                f"check {c['id']} was not ended by its own engine: {c['message']!r}")
        return rep, rss

    def assertNothingLeft(self, running):
        """No process halo started outlives it. halotest's leftover list
        includes every live child of this (subreaper) process; the servers
        this file started itself, and PostgreSQL (daemonised by pg_ctl, so
        adopted by us), are not halo's."""
        left = []
        for pid in running.leftovers():
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if pid in OUR_SERVERS or exe.startswith(PG_BIN):
                continue
            left.append(pid)
        descr = {}
        for pid in left:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    descr[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.assertEqual(descr, {}, f"processes left behind by halo {running.pid}")

    def assertByDeadline(self, check, timeout, what="the check"):
        """The check ended within its timeout + GRACE (+ SLACK)."""
        seconds = check["duration_ms"] / 1000
        self.assertLess(seconds, timeout + GRACE + SLACK,
                        f"{what} took {seconds:.1f} s; timeout {timeout} s + grace {GRACE} s")

    def assertNamesTarget(self, r, kind, url, method="GET"):
        """nil, err as documented: kind, and a message naming the method and URL."""
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["kind"], kind, r)
        self.assertIn(method, r["message"], f"the message does not name the method: {r['message']!r}")
        self.assertIn(url, r["message"], f"the message does not name the URL: {r['message']!r}")


# ---- HTTP -------------------------------------------------------------------------------

class HttpFaultsTest(FaultCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = FaultServer()
        cls.addClassCleanup(cls.server.stop)
        cls.base = cls.server.base

    def test_body_past_max_body(self):
        # An endless chunked body (no Content-Length to refuse up front): the
        # cap counts what arrives and stops the transfer, with the 1 MiB cap
        # and with the 64 MiB default, without the memory cap biting.
        rep, rss = self.run_checks({"01-endless.lua": """
            return { title = "an endless body", timeout = 30, run = function(t, stack)
              local out = {}
              for _, case in ipairs{ { name = "1MiB", max_body = 1048576 }, { name = "default" } } do
                local t0 = time.mono()
                local res, err = http.get(stack.base .. "/endless", { max_body = case.max_body })
                out[case.name] = outcome(res, err, t0)
              end
              t:evidence("results", out)
              local res, err = http.get(stack.base .. "/endless", { max_body = 4096 })
              t:assert(res, "%s", err and err.message)
            end }
        """}, {"base": self.base})
        c = self.assertCheck(rep, 1, "FAIL", r"too_large: .*max_body \(4096 bytes\).*GET http://127\.0\.0\.1:\d+/endless")
        self.assertByDeadline(c, 30)
        url = self.base + "/endless"
        for name, cap in (("1MiB", MiB), ("default", 64 * MiB)):
            r = c["evidence"]["results"][name]
            self.assertNamesTarget(r, "too_large", url)
            self.assertIn(f"max_body ({cap} bytes)", r["message"])
            self.assertLess(r["took"], 15, f"{name}: the transfer did not stop at the cap")
        print(f"\n  endless body: 64 MiB default cap hit after {c['evidence']['results']['default']['took']:.2f} s, "
              f"worker peak RSS {rss.worker_peak / MiB:.0f} MiB")
        self.assertLess(rss.worker_peak, 256 * MiB + 128 * MiB, "the worker's memory blew up")

    def test_gzip_bomb(self):
        # 4 GiB of zeros as 4 MB of gzip, as 6.7 KB of gzip-of-gzip, and as
        # Transfer-Encoding: gzip. halo asks for no content coding, so the
        # Content-Encoding bombs arrive as the bytes on the wire (never
        # inflated); curl does undo the transfer coding, and there the cap
        # must count the inflated bytes: too_large at 16 MiB, and at the
        # 64 MiB default. Either way, no memory blow-up.
        rep, rss = self.run_checks({"01-bomb.lua": """
            return { title = "a gzip bomb", timeout = 30, run = function(t, stack)
              local out = {}
              for _, case in ipairs{ { name = "gzip", path = "/gzip-bomb?layers=1" },
                                     { name = "gzip-gzip", path = "/gzip-bomb?layers=2" },
                                     { name = "te-gzip", path = "/gzip-bomb?te=1" },
                                     { name = "te-gzip-default-cap", path = "/gzip-bomb?te=1", cap = false } } do
                local t0 = time.mono()
                local res, err = http.get(stack.base .. case.path, { headers = { ["Accept-Encoding"] = "gzip" },
                                                                     max_body = case.cap ~= false and 16 * 1024 * 1024 or nil })
                local r = outcome(res, err, t0)
                if res then
                  r.len, r.wire = #res.body, tonumber(res.headers["x-wire-length"])
                  r.decoded = tonumber(res.headers["x-decoded-length"])
                  r.magic = res.body:sub(1, 2) == "\\31\\139"
                end
                out[case.name] = r
                t:expect(r.kind == "too_large" or (res and r.len == r.wire),
                         "%s: neither too_large nor the raw %s bytes: %s", case.name, tostring(r.wire),
                         json.encode(r))
              end
              t:evidence("results", out)
            end }
        """}, {"base": self.base})
        c = rep.check(1)
        self.assertIn(c["status"], ("PASS", "FAIL"), c)
        self.assertByDeadline(c, 30)
        results = c["evidence"]["results"]
        for name, r in results.items():
            with self.subTest(case=name):
                if r["ok"]:
                    self.assertEqual(r["len"], r["wire"], f"{name}: the body was inflated: {r}")
                    self.assertTrue(r["magic"], f"{name}: the body is not the gzip bytes as sent")
                else:
                    self.assertNamesTarget(r, "too_large", self.base + "/gzip-bomb")
                    cap = 64 * MiB if name.endswith("default-cap") else 16 * MiB
                    self.assertIn(f"max_body ({cap} bytes)", r["message"], "the cap counts the inflated bytes")
                self.assertLess(r["took"], 15)
        self.assertEqual(c["status"], "PASS", c)
        print(f"\n  gzip bomb: {', '.join('%s %s' % (n, 'raw %d B' % r['len'] if r['ok'] else r['kind']) for n, r in results.items())}"
              f"; worker peak RSS {rss.worker_peak / MiB:.0f} MiB")
        self.assertLess(rss.worker_peak, 256 * MiB, "the worker's memory blew up")

    def test_max_body_above_the_memory_cap(self):
        """Regression test (fixed engine bug): a max_body larger than the worker's memory (here
        8 GiB against --max-mem 256M) lets the body buffer, which lives
        outside the Lua allocator's cap, grow until the address-space limit
        (max-mem + 512 MiB): xrealloc fails, the worker prints "halo: out of
        memory" and aborts. The check is ERROR "worker crashed: killed by
        SIGABRT (abort)" and loses its evidence — for an endless body and,
        through curl's Transfer-Encoding: gzip decoding, for a 4 MB gzip
        bomb (4 GiB inflated). Expected: the memory limit as documented
        (ERROR "memory limit of 256 MiB exceeded"), or too_large at what the
        worker can hold. Fix: count the body buffer against the sandbox's
        memory budget (or clamp max_body to it) in http.c's on_body and stop
        the transfer there with too_large, instead of aborting in xrealloc."""
        rep, _ = self.run_checks({"01-huge-cap.lua": """
            return { title = "max_body past the memory cap", timeout = 30, run = function(t, stack)
              t:evidence("started", true)
              local t0 = time.mono()
              local res, err = http.get(stack.base .. stack.path, { max_body = 8 * 1024 * 1024 * 1024 })
              t:evidence("result", outcome(res, err, t0))
              t:assert(res, "%s", err and err.message)
            end }
        """, "02-huge-cap-bomb.lua": """
            return { title = "max_body past the memory cap, a gzip bomb", timeout = 30, run = function(t, stack)
              t:evidence("started", true)
              local t0 = time.mono()
              local res, err = http.get(stack.base .. "/gzip-bomb?te=1", { max_body = 8 * 1024 * 1024 * 1024 })
              t:evidence("result", outcome(res, err, t0))
              t:assert(res, "%s", err and err.message)
            end }
        """}, {"base": self.base, "path": "/endless"}, strict=False)
        for n in (1, 2):
            c = rep.check(n)
            self.assertByDeadline(c, 30)
            self.assertNotRegex(c["message"], r"worker crashed")
            self.assertRegex(c["message"], r"memory limit of 256 MiB exceeded|too_large")
            self.assertTrue(c["evidence"].get("started"), "the check's evidence was lost")

    def test_server_drips_a_byte_every_three_seconds(self):
        # Headers dripped, then a body dripped: each request's own timeout
        # fires; a request with the default 30 s timeout is cut by the
        # check's 6 s deadline.
        rep, _ = self.run_checks({"01-drip.lua": """
            return { title = "a dripping server", timeout = 6, run = function(t, stack)
              local out = {}
              for _, path in ipairs{ "/drip-headers?every=3", "/drip-body?every=3" } do
                local t0 = time.mono()
                local res, err = http.get(stack.base .. path, { timeout = 1.5 })
                out[path] = outcome(res, err, t0)
              end
              t:evidence("results", out)
              t:step("drip past the deadline", function()
                local res, err = http.get(stack.base .. "/drip-body?every=3")
                t:log("returned: " .. tostring(err and err.message))
              end)
            end }
        """}, {"base": self.base})
        c = self.assertCheck(rep, 1, "ERROR", r"^timeout: the check exceeded its 6 s limit at .+:\d+ \(in step 'drip past the deadline'\)$")
        self.assertByDeadline(c, 6)
        self.assertGreaterEqual(c["duration_ms"], 5900)
        for path, r in c["evidence"]["results"].items():
            with self.subTest(path=path):
                self.assertNamesTarget(r, "timeout", self.base + path)
                self.assertGreaterEqual(r["took"], 1.4)
                self.assertLess(r["took"], 3, "timeout = 1.5 did not fire")

    def test_redirect_loop_and_non_http_schemes(self):
        listeners = {scheme: CountingListener() for scheme in ("ftp", "gopher", "dict", "telnet", "http")}
        for l in listeners.values():
            self.addCleanup(l.stop)
        p = {k: l.port for k, l in listeners.items()}
        targets = {
            "file": "file:///etc/passwd",
            "FILE": "FILE:///etc/passwd",
            "ftp": f"ftp://127.0.0.1:{p['ftp']}/x",
            "gopher": f"gopher://127.0.0.1:{p['gopher']}/1",
            "dict": f"dict://127.0.0.1:{p['dict']}/d:x",
            "telnet": f"telnet://127.0.0.1:{p['telnet']}/",
        }
        urls = {k: self.base + "/redirect?to=" + quote(v, safe="") for k, v in targets.items()}
        control = self.base + "/redirect?to=" + quote(f"http://127.0.0.1:{p['http']}/x", safe="")
        rep, _ = self.run_checks({"01-redirects.lua": """
            return { title = "redirect loop and non-HTTP schemes", timeout = 30, run = function(t, stack)
              local out = {}
              for name, url in pairs(stack.urls) do
                local t0 = time.mono()
                local res, err = http.get(url, { follow = true })
                out[name] = outcome(res, err, t0)
                if res then out[name].body = res.body end
              end
              for _, n in ipairs{ 10, 3 } do
                local t0 = time.mono()
                local res, err = http.get(stack.loop, { follow = n == 10 and true or n })
                out["loop" .. n] = outcome(res, err, t0)
              end
              local res = http.get(stack.control, { follow = true })
              out.control = { status = res and res.status, body = res and res.body }
              t:evidence("results", out)
              for name in pairs(stack.urls) do t:expect(out[name].kind == "protocol", "%s was not refused", name) end
            end }
        """}, {"base": self.base, "urls": urls, "loop": self.base + "/redirect-loop", "control": control})
        c = self.assertCheck(rep, 1, "PASS")
        self.assertByDeadline(c, 30)
        res = c["evidence"]["results"]
        self.assertNotIn("root:", json.dumps(rep), "/etc/passwd was read")
        for name, url in urls.items():
            with self.subTest(target=targets[name]):
                self.assertNamesTarget(res[name], "protocol", url)
                self.assertEqual(res[name]["url"], url)
                self.assertLess(res[name]["took"], 5)
        for n in (10, 3):
            self.assertNamesTarget(res[f"loop{n}"], "protocol", self.base + "/redirect-loop")
            self.assertRegex(res[f"loop{n}"]["message"], rf"(?i)maximum \({n}\) redirects")
        # the control redirect (to http) was followed, so a listener does see
        # a client that comes; the others saw none
        self.assertEqual(res["control"], {"status": 200, "body": "counted\n"})
        self.assertGreaterEqual(listeners["http"].accepted, 1)
        for scheme in ("ftp", "gopher", "dict", "telnet"):
            self.assertEqual(listeners[scheme].accepted, 0, f"halo connected to the {scheme}:// target")

    def test_listener_that_never_accepts(self):
        hung = NeverAccepts()
        self.addCleanup(hung.close)
        url = f"http://127.0.0.1:{hung.port}/never"
        rep, _ = self.run_checks({"01-hung.lua": """
            return { title = "connect hangs", timeout = 5, run = function(t, stack)
              local t0 = time.mono()
              local res, err = http.get(stack.url, { connect_timeout = 1 })
              t:evidence("short", outcome(res, err, t0))
              t:step("connect past the deadline", function()
                local res, err = http.get(stack.url)          -- connect_timeout 10 s by default
                t:log("returned: " .. tostring(err and err.message))
              end)
            end }
        """}, {"url": url})
        c = self.assertCheck(rep, 1, "ERROR",
                             r"^timeout: the check exceeded its 5 s limit at .+:\d+ \(in step 'connect past the deadline'\)$")
        self.assertByDeadline(c, 5)
        short = c["evidence"]["short"]
        self.assertNamesTarget(short, "timeout", url)
        self.assertIn("connect", short["message"].lower())
        self.assertGreaterEqual(short["took"], 0.9)
        self.assertLess(short["took"], 3, "connect_timeout = 1 did not fire")

    def header_flood(self):
        """One run over the flood variants, shared by the two tests below."""
        cls = type(self)
        if not hasattr(cls, "_flood"):
            cls._flood = self.run_checks({"01-headers.lua": """
                return { title = "a flood of headers", timeout = 30, run = function(t, stack)
                  local out = {}
                  for _, case in ipairs{ { name = "100k-distinct", q = "n=100000" },
                                         { name = "100k-same", q = "n=100000&same=1" },
                                         { name = "20k-same", q = "n=20000&same=1" } } do
                    local t0 = time.mono()
                    local res, err = http.get(stack.base .. "/headers?" .. case.q)
                    local r = outcome(res, err, t0)
                    if res then
                      r.status, r.n, r.body = res.status, #res.header_list, res.body
                      r.joined_len = #(res.headers["x-flood"] or "")
                    end
                    out[case.name] = r
                  end
                  t:evidence("results", out)
                  local res, err = http.get(stack.base .. "/headers?n=100000")
                  t:assert(res, "%s", err and err.message)
                end }
            """}, {"base": self.base})
        return cls._flood

    def test_hundred_thousand_headers(self):
        rep, rss = self.header_flood()
        c = self.assertCheck(rep, 1, "FAIL", r"GET http://127\.0\.0\.1:\d+/headers\?n=100000")
        self.assertByDeadline(c, 30)
        res = c["evidence"]["results"]
        for name in ("100k-distinct", "100k-same"):
            r = res[name]
            with self.subTest(case=name):
                self.assertFalse(r["ok"], r)
                self.assertIn("GET", r["message"])
                self.assertIn("/headers?n=100000", r["message"])
                self.assertRegex(r["message"], r"(?i)header", "the message does not say what was too much")
                self.assertLess(r["took"], 10)
        # under curl's 300 KB header limit: 20k repeats of one header arrive
        # whole, every one listed and joined, without the worker blowing up
        r = res["20k-same"]
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["status"], 200)
        self.assertEqual(r["n"], 20000 + 2)
        self.assertEqual(r["joined_len"], 20000 * 3 - 2)  # "v, v, ..., v"
        self.assertLess(r["took"], 10)
        print(f"\n  100k headers: {res['100k-distinct']['kind']}: {res['100k-distinct']['message'][:60]}...; "
              f"20k repeats joined in {r['took']:.2f} s; worker peak RSS {rss.worker_peak / MiB:.0f} MiB")
        self.assertLess(rss.worker_peak, 256 * MiB)

    def test_hundred_thousand_headers_kind(self):
        """Regression test (fixed engine bug): a reply whose header block passes curl's limit (300 KB
        in curl 7.88: CURLE_RECV_ERROR "Too large response headers") is
        err.kind "connect", which modules.md reserves for refused, reset and
        empty replies — a script retrying connect errors retries this one for
        ever. It is a reply past a size limit (too_large), or at least a
        malformed one (protocol). Fix: in http.c's kind mapping, classify
        CURLE_RECV_ERROR whose errbuf says "Too large response headers" (and
        CURLE_TOO_LARGE on curl >= 8.6) as too_large."""
        rep, _ = self.header_flood()
        for name in ("100k-distinct", "100k-same"):
            r = rep.check(1)["evidence"]["results"][name]
            self.assertIn(r["kind"], ("too_large", "protocol"), r)


# ---- PostgreSQL -------------------------------------------------------------------------

class SqlFaultsTest(FaultCase):
    """A cluster of its own (it is restarted), and a role of the test's
    own, so that pg_stat_activity can be asked about that role only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PgCluster()
        cls.addClassCleanup(cls.pg.stop)
        cls.role = "halo_fault_" + secrets.token_hex(4)
        cls.pg.psql(f"CREATE ROLE {cls.role} LOGIN")
        cls.url = f"postgresql://{cls.role}@127.0.0.1:{cls.pg.port}/postgres"

    def backends(self, where="true"):
        out = self.pg.psql(f"SELECT pid, state, left(query, 80) FROM pg_stat_activity "
                           f"WHERE usename = '{self.role}' AND {where}")
        return [l for l in out.splitlines() if l.strip()]

    def wait_backends(self, want, where="true", timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            rows = self.backends(where)
            if len(rows) == want or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def test_pg_sleep_3600_cancelled_at_the_deadline(self):
        marker = "halo-fault-" + secrets.token_hex(4)
        seen = {}

        def during(h):
            seen["active"] = self.wait_backends(1, f"state = 'active' AND query LIKE '%{marker}%'", timeout=3)

        rep, _ = self.run_checks({"01-sleep.lua": """
            local sql = require "sql"
            return { title = "pg_sleep(3600)", timeout = 3, run = function(t, stack)
              local db = assert(sql.connect(stack.db))
              t:step("pg_sleep(3600)", function() return db:query(stack.query) end)
              t:log("the query returned")
            end }
        """}, {"db": self.url, "query": f"SELECT pg_sleep(3600) /* {marker} */"}, during=during)
        c = self.assertCheck(rep, 1, "ERROR", r"^timeout: the check exceeded its 3 s limit at .+:\d+ \(in step 'pg_sleep\(3600\)'\)$")
        self.assertEqual(logs(c), [])
        self.assertLess(c["duration_ms"], 3000 + 1500, "the check did not end at its deadline (grace is not for it)")
        self.assertEqual(len(seen["active"]), 1, f"the query never ran on the server: {seen}")
        # cancelled on the server, and the worker's connection closed: no
        # backend of the role is left, active or idle
        self.assertEqual(self.wait_backends(0), [], "a backend of the test's role is still there")

    def test_billion_row_result(self):
        rep, rss = self.run_checks({
            "01-stream.lua": """
                local sql = require "sql"
                return { title = "a billion rows, streamed", timeout = 30, run = function(t, stack)
                  local out = {}
                  local db = assert(sql.connect(stack.db))
                  local t0 = time.mono()
                  local rows, err = db:query("SELECT generate_series(1, 1000000000) AS g")
                  out.rows = outcome(rows, err, t0)
                  out.after = assert(db:query("SELECT 42 AS x"))[1].x
                  local wide = assert(sql.connect(stack.db, { max_rows = 1000000000, max_bytes = 8 * 1024 * 1024 }))
                  t0 = time.mono()
                  rows, err = wide:query("SELECT generate_series(1, 1000000000) AS g, repeat('x', 200) AS pad")
                  out.bytes = outcome(rows, err, t0)
                  t:evidence("results", out)
                  t:assert(rows, "%s", err and err.message)
                end }
            """,
            # the form in the brief: a set-returning function in FROM is
            # materialised by the server before the first row is sent
            "02-from.lua": """
                local sql = require "sql"
                return { title = "a billion rows, SRF in FROM", timeout = 4, run = function(t, stack)
                  local db = assert(sql.connect(stack.db))
                  local t0 = time.mono()
                  local rows, err = t:step("query", function()
                    return db:query("SELECT g FROM generate_series(1, 1000000000) g")
                  end)
                  t:evidence("from", outcome(rows, err, t0))
                  t:assert(rows, "%s", err and err.message)
                end }
            """}, {"db": self.url}, args=["--max-mem", "128M"])
        c = self.assertCheck(rep, 1, "FAIL", r"query on 127\.0\.0\.1:\d+/postgres: the result passed max_rows")
        self.assertByDeadline(c, 30)
        r = c["evidence"]["results"]
        where = f"127.0.0.1:{self.pg.port}/postgres"
        for name, cap in (("rows", "max_rows (100000)"), ("bytes", "max_bytes (8388608)")):
            with self.subTest(cap=name):
                self.assertFalse(r[name]["ok"])
                self.assertEqual(r[name]["kind"], "too_large", r[name])
                self.assertIn(f"query on {where}", r[name]["message"])
                self.assertIn(cap, r[name]["message"])
                self.assertLess(r[name]["took"], 10, f"{name}: too_large only after {r[name]['took']:.1f} s")
        self.assertEqual(r["after"], 42, "the connection is unusable after too_large")
        # the FROM form: too_large had it streamed; it does not, so the
        # check's deadline ends it (ERROR timeout) — and cancels it there
        c2 = rep.check(2)
        self.assertByDeadline(c2, 4)
        if c2["status"] == "FAIL":
            self.assertRegex(c2["message"], r"query on .*the result passed")
        else:
            self.assertCheck(rep, 2, "ERROR", r"^timeout: the check exceeded its 4 s limit at .+:\d+ \(in step 'query'\)$")
        self.assertEqual(self.wait_backends(0, "state = 'active'"), [], "a query is still running on the server")
        print(f"\n  billion rows: too_large after {r['rows']['took']:.2f} s (max_rows), {r['bytes']['took']:.2f} s "
              f"(max_bytes); SRF in FROM: {c2['status']} {c2['message']}; worker peak RSS "
              f"{rss.worker_peak / MiB:.0f} MiB (--max-mem 128M)")
        self.assertLess(rss.worker_peak, 128 * MiB + 64 * MiB, "the rows piled up in the worker")

    def test_restart_mid_check(self):
        rv = Rendezvous()
        self.addCleanup(rv.stop)
        restarted = {}

        def during(h):
            if not rv.wait("connected", 20):
                return
            t0 = time.monotonic()
            p = self.pg._as_pg([os.path.join(PG_BIN, "pg_ctl"), "-D", self.pg.data, "-l", self.pg.logfile,
                                "-m", "fast", "-w", "-t", "60", "restart"], check=False, timeout=90)
            restarted.update(rc=p.returncode, seconds=time.monotonic() - t0, out=p.stdout + p.stderr)
            rv.set("restarted")

        rep, _ = self.run_checks({"01-restart.lua": """
            local sql = require "sql"
            return { title = "the server restarts under the check", timeout = 40, run = function(t, stack)
              local out = {}
              local db = assert(sql.connect(stack.db))
              out.before = assert(db:query("SELECT pg_backend_pid() AS pid"))[1].pid
              mark(stack, "connected")
              t:assert(await(stack, "restarted", 30), "the test did not restart the server")
              local t0 = time.mono()
              local rows, err = db:query("SELECT 1 AS one")
              out.next = outcome(rows, err, t0)
              t0 = time.mono()
              rows, err = db:query("SELECT 1 AS one")
              out.again = outcome(rows, err, t0)
              local db2, cerr = sql.connect(stack.db, { connect_timeout = 5 })
              out.reconnect = { ok = db2 ~= nil, message = cerr and cerr.message }
              if db2 then out.reconnect.pid = assert(db2:query("SELECT pg_backend_pid() AS pid"))[1].pid end
              t:evidence("results", out)
              t:expect(db2, "could not reconnect: %s", cerr and cerr.message)
            end }
        """}, {"db": self.url, "rv": rv.url}, during=during)
        self.assertEqual(restarted.get("rc"), 0, f"pg_ctl restart: {restarted}")
        c = self.assertCheck(rep, 1, "PASS")
        r = c["evidence"]["results"]
        where = f"127.0.0.1:{self.pg.port}/postgres"
        self.assertFalse(r["next"]["ok"])
        self.assertEqual(r["next"]["kind"], "connect", r["next"])
        self.assertIn(f"query on {where}", r["next"]["message"])
        self.assertRegex(r["next"]["message"], r"terminating connection|server closed the connection")
        self.assertLess(r["next"]["took"], 5)
        self.assertFalse(r["again"]["ok"])
        self.assertIn(r["again"]["kind"], ("closed", "connect"), r["again"])
        self.assertIn(where, r["again"]["message"])
        self.assertTrue(r["reconnect"]["ok"], r["reconnect"])
        self.assertNotEqual(r["reconnect"]["pid"], r["before"], "the same backend after a restart?")
        self.assertEqual(self.wait_backends(0), [], "a backend of the test's role is still there")


# ---- Docker -----------------------------------------------------------------------------

class DaemonGoneTest(FaultCase):
    """The Docker daemon "stops" mid-check: a Unix-socket proxy in front of
    the real daemon (never touched), named by DOCKER_HOST, killed by its pid
    while a `c:stop{timeout = 60}` is in flight (the container's PID 1 is
    `sleep`, which ignores SIGTERM, so the daemon holds the call for 60 s)
    and a `c:wait{state = "exited"}` polls. One run; each test reads it."""

    WAIT_TIMEOUT = 5

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        dockerenv.ensure_docker()  # SkipTest when there is no daemon to be had
        cls.project = "halotest-fault-" + secrets.token_hex(4)
        cls.addClassCleanup(dockerenv.remove_project, cls.project)
        p = dockerenv._docker("run", "-d", "--network", "none", "-v", "/usr:/usr:ro", "-v", "/etc:/etc:ro",
                              "--label", f"{dockerenv.PROJECT_LABEL}={cls.project}",
                              "--label", f"{dockerenv.SERVICE_LABEL}=sleeper",
                              dockerenv.IMAGE, "/bin/sleep", "600", timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"docker run failed: {p.stderr}")
        cls.cid = p.stdout.strip()
        cls.dir = tempfile.mkdtemp(prefix="halo-dproxy-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.sock = os.path.join(cls.dir, "proxy.sock")
        ready, cls.conn_log = os.path.join(cls.dir, "ready"), os.path.join(cls.dir, "conns")
        upstream = (os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
        if not upstream.startswith("unix://"):
            raise unittest.SkipTest(f"DOCKER_HOST={upstream}: the proxy needs the daemon on a Unix socket")
        cls.proxy = subprocess.Popen([sys.executable, UNIX_PROXY, "--listen", cls.sock, "--upstream",
                                      upstream[len("unix://"):], "--ready-file", ready, "--log", cls.conn_log],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        OUR_SERVERS.add(cls.proxy.pid)
        cls.addClassCleanup(stop_process, cls.proxy, signal.SIGKILL)
        wait_for_file(ready, cls.proxy, "the docker proxy")
        cls.rv = Rendezvous()
        cls.addClassCleanup(cls.rv.stop)
        cls.killed_at = None

        def during(h):
            if not cls.rv.wait("in-flight", 30):
                return
            time.sleep(0.5)  # the stop call is at the daemon by now
            with open(cls.conn_log) as f:
                cls.conns_before_kill = len(f.read().splitlines())
            os.kill(cls.proxy.pid, signal.SIGKILL)
            cls.proxy.wait()
            cls.killed_at = time.monotonic()
            cls.rv.set("killed")

        case = cls("run")
        case.addCleanup = lambda *a, **k: cls.addClassCleanup(*a, **k)
        cls.rep, _ = case.run_checks({"01-daemon-gone.lua": """
            local docker = require "docker"
            return { title = "the daemon goes away", timeout = 30, run = function(t, stack)
              local out = {}
              local v, verr = docker.version()
              out.version = { ok = v ~= nil, server = v and v.server, message = verr and verr.message }
              local c = assert(docker.container(stack.cid))
              local waiter = task.spawn(function()
                local t0 = time.mono()
                local ok, err = c:wait{ state = "exited", timeout = stack.wait_timeout }
                return outcome(ok, err, t0)
              end)
              local stopper = task.spawn(function()
                local t0 = time.mono()
                local ok, err = c:stop{ timeout = 60, undo = false }
                return outcome(ok, err, t0)
              end)
              time.sleep(0.3)
              mark(stack, "in-flight")
              t:assert(await(stack, "killed", 20), "the test did not kill the proxy")
              local killed = time.mono()
              out.stop = stopper:join()
              out.stop.after_kill = time.mono() - killed
              local t0 = time.mono()
              local v2, err = docker.version()
              out.version_after = outcome(v2, err, t0)
              t0 = time.mono()
              local list, err2 = docker.containers{ all = true }
              out.containers_after = outcome(list, err2, t0)
              out.wait = waiter:join()
              out.wait.after_kill = time.mono() - killed
              t:evidence("results", out)
              t:assert(v2, "%s", err and err.message)
            end }
        """}, {"cid": cls.cid, "rv": cls.rv.url, "wait_timeout": cls.WAIT_TIMEOUT,
               "compose": {"project": cls.project}}, env={"DOCKER_HOST": "unix://" + cls.sock}, during=during)
        cls.check = cls.rep.check(1)
        cls.results = cls.check["evidence"].get("results", {})

    def test_the_proxy_carried_the_calls_before_it_died(self):
        self.assertIsNotNone(self.killed_at, "the check never got its calls in flight")
        self.assertTrue(self.results["version"]["ok"], self.results["version"])
        self.assertGreaterEqual(self.conns_before_kill, 1, "halo did not talk to the daemon through the proxy")

    def test_check_fails_clearly_and_in_time(self):
        c = self.assertCheck(self.rep, 1, "FAIL", r"docker: (GET /version on the daemon at \S+|the daemon at \S+ does not answer): connect: ")
        self.assertByDeadline(c, 30)

    def test_docker_calls_fail_as_connect(self):
        for name in ("version_after", "containers_after"):
            r = self.results[name]
            with self.subTest(call=name):
                self.assertFalse(r["ok"])
                self.assertEqual(r["kind"], "connect", r)
                # once a call failed, the next looks for the daemon afresh and says it is gone
                self.assertRegex(r["message"], r"^docker: (GET /(version|containers/json) on the daemon at \S+|"
                                               r"the daemon at \S+ does not answer): connect: ")
                self.assertLess(r["took"], 3, "a call to a dead socket should fail at once")

    def test_call_in_flight_ends_when_the_daemon_goes(self):
        r = self.results["stop"]
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["kind"], "connect", r)
        self.assertIn(f"POST /containers/{self.cid}/stop", r["message"])
        self.assertLess(r["after_kill"], 5, f"c:stop went on {r['after_kill']:.1f} s after the daemon went away")

    def test_wait_in_progress_ends(self):
        r = self.results["wait"]
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["kind"], "timeout", r)
        self.assertRegex(r["message"], r"not exited after \d+ s \(last: docker: .*connect")
        self.assertLess(r["took"], self.WAIT_TIMEOUT + 3, "c:wait outlived its own timeout")

    def test_errors_name_the_socket(self):
        """Regression test (fixed engine bug): once the daemon has answered once, a failing docker
        call's message names only curl's view of the URL —
        "docker: GET /version: connect: Failed to connect to docker port 80
        after 0 ms: Couldn't connect to server (GET http://docker/v1.41/version)"
        — never the socket (DOCKER_HOST=unix:///tmp/.../proxy.sock), so an
        operator cannot tell which daemon is gone ("docker port 80" is not
        even where it looked). Only the first call of a process (the /version
        probe in mod/docker.lua's call()) says "the daemon at unix://… does
        not answer". Fix: in call(), put daemon.label into every failure
        message (e.g. "docker: GET /version on unix:///…/proxy.sock: …"),
        and forget the cached daemon on a connect failure so the next call
        probes again."""
        for name in ("version_after", "containers_after", "stop", "wait"):
            self.assertIn(self.sock, self.results[name]["message"], name)


class ComposeClientFaultsTest(FaultCase):
    """A fake docker-compose first in PATH (allowed by allow_exec by name)
    that hangs (ignoring SIGTERM, with a grandchild) or floods its output;
    a fake `docker` that has no `compose` subcommand makes halo pick
    docker-compose. Every process the fake starts writes its pid to a file,
    and after the run none of those pids may be alive. One run; each test
    reads it. No daemon is needed: the fake never talks to one."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="halo-fakecompose-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        bindir = os.path.join(cls.dir, "bin")
        os.makedirs(bindir)
        cls.pidfile = os.path.join(cls.dir, "pids")
        cls.sleep_arg = f"31.{random.SystemRandom().randrange(10**8):08d}"
        real_docker = shutil.which("docker") or "/nonexistent/docker"
        with open(os.path.join(bindir, "docker-compose"), "w") as f:
            f.write(f"""#!/bin/sh
# a docker-compose that misbehaves as $FAKE_MODE says
echo "$$ $FAKE_MODE main" >> {cls.pidfile}
case "$FAKE_MODE" in
  hang)
    trap '' TERM
    sleep {cls.sleep_arg} &
    echo "$! $FAKE_MODE sleep" >> {cls.pidfile}
    wait; wait ;;
  flood-forever)
    yes eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee >&2 &
    echo "$! $FAKE_MODE yes-stderr" >> {cls.pidfile}
    exec yes ooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo ;;
  flood-exit)
    head -c 300000000 /dev/zero | tr '\\0' o
    head -c 300000000 /dev/zero | tr '\\0' e >&2
    exit 1 ;;
esac
echo "unknown FAKE_MODE '$FAKE_MODE'" >&2
exit 2
""")
        with open(os.path.join(bindir, "docker"), "w") as f:
            f.write(f"""#!/bin/sh
if [ "$1" = compose ]; then echo "docker: 'compose' is not a docker command." >&2; exit 1; fi
exec {real_docker} "$@"
""")
        for name in ("docker-compose", "docker"):
            os.chmod(os.path.join(bindir, name), 0o755)
        cls.compose_file = os.path.join(cls.dir, "compose.yml")
        with open(cls.compose_file, "w") as f:
            f.write('version: "2.4"\nservices: {}\n')
        env = {"PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")}

        compose = """
            local docker = require "docker"
            local function up(t, stack, mode, timeout)
              local p = docker.compose{ files = { stack.file }, env = { FAKE_MODE = mode } }
              local t0 = time.mono()
              local ok, err = p:up{ timeout = timeout }
              local r = outcome(ok, err, t0)
              if err then
                r.message_len, r.message = #err.message, err.message:sub(1, 300)
                r.stdout_len, r.stderr_len = #(err.stdout or ""), #(err.stderr or "")
              end
              return r
            end
        """
        case = cls("run")
        case.addCleanup = lambda *a, **k: cls.addClassCleanup(*a, **k)
        cls.rep, cls.rss = case.run_checks({
            "01-hang.lua": compose + """
                return { title = "compose hangs, ignoring SIGTERM", timeout = 15, run = function(t, stack)
                  local r = up(t, stack, "hang", 2)
                  t:evidence("result", r)
                  t:assert(r.ok, "%s", r.message)
                end }
            """,
            "02-flood-forever.lua": compose + """
                return { title = "compose floods stdout and stderr for ever", timeout = 15, run = function(t, stack)
                  local r = up(t, stack, "flood-forever", 3)
                  t:evidence("result", r)
                  t:assert(r.ok, "%s", r.message)
                end }
            """,
            "03-flood-exit.lua": compose + """
                return { title = "compose writes 300 MB to each stream, then fails", timeout = 30, run = function(t, stack)
                  local r = up(t, stack, "flood-exit", 20)
                  t:evidence("result", r)
                  t:assert(r.ok, "%s", r.message)
                end }
            """,
            "04-proc-flood.lua": """
                local proc = require "proc"
                return { title = "proc.run of a flooding client", timeout = 15, run = function(t, stack)
                  local t0 = time.mono()
                  local r = proc.run{ argv = { "docker-compose", "up" }, env = { FAKE_MODE = "flood-forever" }, timeout = 2 }
                  t:evidence("result", { took = time.mono() - t0, timed_out = r.timed_out, truncated = r.truncated,
                                         signal = r.signal, code = r.code, stdout_len = #r.stdout,
                                         stderr_len = #r.stderr, head = r.stdout:sub(1, 10) })
                end }
            """,
            "05-hang-deadline.lua": compose + """
                return { title = "compose hangs past the check's deadline", timeout = 3, run = function(t, stack)
                  t:step("compose up", function() return up(t, stack, "hang") end)
                end }
            """,
            # what a script that does not look at err gets: assert(p:up{})
            "06-assert.lua": """
                local docker = require "docker"
                return { title = "assert(p:up{}) of a flooding client", timeout = 30, run = function(t, stack)
                  local p = docker.compose{ files = { stack.file }, env = { FAKE_MODE = "flood-exit" } }
                  assert(p:up{ timeout = 20 })
                end }
            """,
        }, {"file": cls.compose_file, "compose": {"project": "halotest-fake-" + secrets.token_hex(4)},
            "allow_exec": ["docker", "docker-compose"]}, env=env)
        with open(cls.pidfile) as f:
            cls.pids = [l.split() for l in f.read().splitlines() if l.strip()]

    def pids_of(self, mode):
        return [int(p) for p, m, _ in self.pids if m == mode]

    def assertGone(self, mode):
        pids = self.pids_of(mode)
        self.assertTrue(pids, f"the fake compose never ran in mode {mode}: {self.pids}")
        alive = [p for p in pids if is_alive(p)]
        for p in alive:
            os.kill(p, signal.SIGKILL)
        self.assertEqual(alive, [], f"{mode}: processes of the fake compose are still running")

    def test_hang_is_killed_with_its_group_at_the_timeout(self):
        c = self.assertCheck(self.rep, 1, "FAIL", r"compose up -d \(timed out\)")
        r = c["evidence"]["result"]
        self.assertEqual(r["kind"], "compose", r)
        # SIGTERM at 2 s is ignored, SIGKILL 2 s later
        self.assertGreaterEqual(r["took"], 3.5, r)
        self.assertLess(r["took"], 2 + 2 + 2, r)
        self.assertByDeadline(c, 15)
        self.assertGone("hang")
        self.assertEqual(processes_with_args("sleep", self.sleep_arg), [])

    def test_flood_forever_is_capped_and_killed_at_the_timeout(self):
        c = self.assertCheck(self.rep, 2, "FAIL", r"compose up -d \(timed out\)")
        r = c["evidence"]["result"]
        self.assertEqual(r["kind"], "compose")
        self.assertGreaterEqual(r["took"], 2.9)
        self.assertLess(r["took"], 3 + 2 + 2)
        self.assertEqual(r["stdout_len"], 16 * MiB, "stdout is not capped at max_output's 16 MiB")
        self.assertEqual(r["stderr_len"], 16 * MiB)
        self.assertGone("flood-forever")

    def test_flood_that_exits_is_drained_and_capped(self):
        c = self.assertCheck(self.rep, 3, "FAIL", r"compose up -d \(exit 1\)")
        r = c["evidence"]["result"]
        self.assertEqual(r["stdout_len"], 16 * MiB)
        self.assertEqual(r["stderr_len"], 16 * MiB)
        self.assertLess(r["took"], 15, "600 MB through the pipes should take seconds")
        self.assertGone("flood-exit")

    def test_proc_run_of_a_flood_is_truncated_at_its_timeout(self):
        c = self.assertCheck(self.rep, 4, "PASS")
        r = c["evidence"]["result"]
        self.assertIs(r["timed_out"], True, r)
        self.assertIs(r["truncated"], True, r)
        self.assertEqual(r["signal"], signal.SIGTERM, r)
        self.assertEqual((r["stdout_len"], r["stderr_len"]), (16 * MiB, 16 * MiB))
        self.assertEqual(r["head"], "o" * 10)
        self.assertLess(r["took"], 2 + 2)

    def test_hang_past_the_check_deadline(self):
        c = self.assertCheck(self.rep, 5, "ERROR", r"^timeout: the check exceeded its 3 s limit at .+:\d+ \(in step 'compose up'\)$")
        self.assertByDeadline(c, 3)
        self.assertGone("hang")
        self.assertEqual(processes_with_args("sleep", self.sleep_arg), [])

    def test_memory_stays_bounded(self):
        print(f"\n  compose floods: worker peak RSS {self.rss.worker_peak / MiB:.0f} MiB")
        self.assertLess(self.rss.worker_peak, 256 * MiB + 64 * MiB)

    def test_error_message_is_capped(self):
        """Regression test (fixed engine bug): compose's err.message embeds the client's whole
        stderr (mod/docker.lua Compose:run: format("compose %s (%s): %s",
        ..., r.stderr)), up to max_output = 16 MiB: a flooding client turns
        one error into a 16 MiB message, and `assert(p:up{})` into a 16 MiB
        check message — the JSON report grows by 16 MiB per such check and
        the progress line on stderr is 16 MiB long. Fix: put only the tail
        of stderr in the message (its last lines, a few KB at most, marked
        as cut), keep the whole in err.stderr; and cap a check's message in
        the report as log lines are (FIELD_MAX)."""
        for n in (1, 2, 3):
            r = self.rep.check(n)["evidence"]["result"]
            self.assertLess(r["message_len"], 64 * 1024, f"check {n}: err.message is {r['message_len']} bytes")
        c = self.rep.check(6)
        self.assertEqual(c["status"], "ERROR")
        self.assertLess(len(c["message"]), 64 * 1024, f"the check's message is {len(c['message'])} bytes")


if __name__ == "__main__":
    unittest.main()
