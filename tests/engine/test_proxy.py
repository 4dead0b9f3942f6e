"""`halo proxy` and `require "netfault"`, on loopback: the real proxy
between a socket of the test and a small Python server, each fault's
effect measured on the bytes; then checks run by `halo run` that fault a
link and leave it healed whatever happens to them (a failure, an error, a
kill -9 followed by `halo cleanup`)."""
import errno
import http.client
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest

from halotest import HALO, HaloTestCase, Running, halo_env, kill_9_run, parse_report


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A threaded TCP server on 127.0.0.1; handler(sock) per connection."""

    def __init__(self, handler):
        outer = self

        class H(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    handler(self.request)
                except OSError:
                    pass

        class S(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        outer.addr = f"127.0.0.1:{self.port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def echo(sock):
    while True:
        data = sock.recv(65536)
        if not data:
            sock.shutdown(socket.SHUT_WR)
            return
        sock.sendall(data)


def sender(n, then_close=True):
    """Sends n bytes (a counting pattern) as soon as a client connects."""
    payload = bytes(i % 251 for i in range(n))

    def handle(sock):
        sock.sendall(payload)
        if then_close:
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        else:
            time.sleep(30)
    return handle, payload


class Proxy:
    def __init__(self, *links):
        self.control = free_port()
        args = [HALO, "proxy", "--control", f"127.0.0.1:{self.control}"]
        for spec in links:
            args += ["--link", spec]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=halo_env())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.api("GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise AssertionError("halo proxy did not come up: " + self.proc.stderr.read())

    def api(self, method, path, body=None, raw=None):
        c = http.client.HTTPConnection("127.0.0.1", self.control, timeout=5)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        return r.status, (json.loads(text) if text.strip() else None)

    def fault(self, link, **spec):
        status, doc = self.api("POST", f"/links/{link}/faults", spec)
        assert status == 201, (status, doc)
        return doc

    def link(self, name):
        return self.api("GET", f"/links/{name}")[1]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err


def connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_all(sock, limit=1 << 30):
    out = bytearray()
    while len(out) < limit:
        data = sock.recv(65536)
        if not data:
            break
        out += data
    return bytes(out)


class ProxyTest(unittest.TestCase):
    def setUp(self):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO}")
        self.servers = []

    def server(self, handler):
        s = Server(handler)
        self.servers.append(s)
        self.addCleanup(s.close)
        return s

    def proxy(self, upstream, name="l"):
        self.lport = free_port()
        p = Proxy(f"{name}=127.0.0.1:{self.lport},{upstream.addr}")
        self.addCleanup(p.stop)
        return p

    def idle(self, p, link="l"):
        deadline = time.monotonic() + 5
        while p.link(link)["counters"]["active"] and time.monotonic() < deadline:
            time.sleep(0.01)

    def roundtrip(self, port, data=b"ping", timeout=5):
        with connect(port, timeout) as s:
            t0 = time.monotonic()
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            return got, time.monotonic() - t0

    # ---- healthy ---------------------------------------------------------------

    def test_forwards_byte_for_byte_both_ways_with_half_close(self):
        up = self.server(echo)
        p = self.proxy(up)
        payload = os.urandom(4 << 20)
        with connect(self.lport, 20) as s:
            t = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
            t.start()
            got = recv_all(s)  # the echo ends when it read our end of file: half-close went up and came down
            t.join()
        self.assertEqual(len(got), len(payload))
        self.assertTrue(got == payload, "the bytes changed on the way")
        handle, sent = sender(3 << 20)
        down = self.server(handle)
        p2 = self.proxy(down, "down")
        with connect(self.lport, 20) as s:
            self.assertTrue(recv_all(s) == sent)
        n = p2.link("down")["counters"]
        self.assertEqual(n["bytes_down"], len(sent))
        c = p.link("l")["counters"]
        self.assertEqual((c["accepted"], c["bytes_up"], c["bytes_down"], c["resets"]), (1, len(payload), len(payload), 0))
        rc, out, _ = p.stop()
        self.assertEqual(rc, 0)
        events = [json.loads(line)["event"] for line in out.splitlines()]
        self.assertEqual(events[:2], ["link created", "start"])
        self.assertEqual(events[-1], "stop")

    def test_upstream_down_resets_the_client(self):
        dead = free_port()

        class Nothing:
            addr = f"127.0.0.1:{dead}"
        p = self.proxy(Nothing)
        # the reset may come before connect() returns: either way, a reset
        with self.assertRaises(ConnectionResetError):
            with connect(self.lport) as s:
                s.sendall(b"x")
                time.sleep(0.2)
                s.recv(10)
        c = p.link("l")["counters"]
        self.assertEqual((c["refused"], c["resets"], c["active"]), (1, 1, 0))

    # ---- faults ------------------------------------------------------------------

    def test_latency_delays_each_direction(self):
        p = self.proxy(self.server(echo))
        _, base = self.roundtrip(self.lport)
        p.fault("l", type="latency", ms=150, direction="up")
        got, took = self.roundtrip(self.lport)
        self.assertEqual(got, b"ping")
        self.assertGreaterEqual(took, 0.15)
        p.fault("l", type="latency", ms=100, jitter_ms=20, direction="down")
        _, took = self.roundtrip(self.lport)
        self.assertGreaterEqual(took, 0.15 + 0.08)
        # order is kept whatever the jitter
        with connect(self.lport) as s:
            for i in range(50):
                s.sendall(b"%03d" % i)
            got = b""
            while len(got) < 150:
                got += s.recv(1000)
        self.assertEqual(got, b"".join(b"%03d" % i for i in range(50)))

    def test_bandwidth_limits_the_rate(self):
        handle, payload = sender(100 * 1024)
        p = self.proxy(self.server(handle))
        p.fault("l", type="bandwidth", kbps=200, direction="down")  # 200 KiB/s: 100 KiB take 0.5 s
        with connect(self.lport) as s:
            t0 = time.monotonic()
            got = recv_all(s)
            took = time.monotonic() - t0
        self.assertTrue(got == payload)
        self.assertGreaterEqual(took, 0.4)
        self.assertLess(took, 3)

    def test_slice_delivers_in_pieces(self):
        handle, payload = sender(100)
        p = self.proxy(self.server(handle))
        p.fault("l", type="slice", bytes=10, delay_ms=30, direction="down")
        pieces = []
        with connect(self.lport) as s:
            t0 = time.monotonic()
            while True:
                data = s.recv(1000)
                if not data:
                    break
                pieces.append(data)
            took = time.monotonic() - t0
        self.assertEqual(b"".join(pieces), payload)
        # a client descheduled for a slice's delay reads two at once: most are one
        sizes = sorted(len(x) for x in pieces)
        self.assertLessEqual(sizes[len(sizes) // 2], 10, sizes)
        self.assertGreaterEqual(len(pieces), 5, sizes)
        self.assertGreaterEqual(took, 9 * 0.03)

    def test_blackhole_swallows_and_keeps_the_connection(self):
        p = self.proxy(self.server(echo))
        p.fault("l", type="blackhole", direction="up")
        with connect(self.lport, timeout=0.6) as s:
            s.sendall(b"hello")
            with self.assertRaises(socket.timeout):
                s.recv(10)  # no answer, and no end of file either
            s.sendall(b"more")  # still open
            self.assertEqual(p.link("l")["counters"]["active"], 1)

    def test_limit_closes_after_n_bytes(self):
        handle, payload = sender(5000, then_close=False)
        p = self.proxy(self.server(handle))
        p.fault("l", type="limit", bytes=1000, direction="down")
        with connect(self.lport) as s:
            got = recv_all(s)
        self.assertEqual(got, payload[:1000])

    def test_a_fault_added_mid_bulk_takes_the_bytes_not_yet_passed(self):
        # a bulk flow goes through a pipe with splice(2) on Linux: what the
        # pipe holds when a fault comes is treated as queued bytes, exactly
        def stalled(p, s, link):
            """Reads 2 MiB, then stops until the proxy stops passing any."""
            got = bytearray()
            while len(got) < 2 << 20:
                got += s.recv(65536)
            last = -1
            while True:
                time.sleep(0.2)
                passed = p.link(link)["counters"]["bytes_down"]
                if passed == last:
                    return got, passed
                last = passed

        handle, payload = sender(16 << 20, then_close=False)
        p = self.proxy(self.server(handle))
        with connect(self.lport, 10) as s:
            got, passed = stalled(p, s, "l")
            p.fault("l", type="limit", bytes=1000, direction="down")
            got += recv_all(s)
        self.assertEqual(len(got), passed + 1000)  # the limit counts from the bytes passed when it hit
        self.assertTrue(bytes(got) == payload[:passed + 1000])

        handle, payload = sender(8 << 20)
        p = self.proxy(self.server(handle), "lat")
        with connect(self.lport, 10) as s:
            got, _ = stalled(p, s, "lat")
            p.fault("lat", type="latency", ms=30, jitter_ms=20, direction="down")
            got += recv_all(s)
        self.assertEqual(len(got), len(payload))
        self.assertTrue(bytes(got) == payload, "the bytes changed on the way")

    def test_reset_resets_existing_and_new_connections(self):
        p = self.proxy(self.server(echo))
        old = connect(self.lport)
        self.addCleanup(old.close)
        self.assertEqual(self.roundtrip(self.lport)[0], b"ping")
        f = p.fault("l", type="reset")
        with self.assertRaises(ConnectionResetError):
            old.recv(10)
        with self.assertRaises(ConnectionResetError):
            with connect(self.lport) as s:
                time.sleep(0.1)
                s.sendall(b"x")
                s.recv(10)
        self.assertEqual(p.api("DELETE", f"/links/l/faults/{f['id']}")[0], 204)
        self.assertEqual(self.roundtrip(self.lport)[0], b"ping")
        info = p.link("l")
        self.assertGreaterEqual(info["counters"]["resets"], 2)

    def test_cut_refuses_and_heal_restores(self):
        p = self.proxy(self.server(echo))
        old = connect(self.lport)
        self.addCleanup(old.close)
        p.fault("l", type="cut")
        with self.assertRaises(ConnectionRefusedError):
            connect(self.lport)
        with self.assertRaises(ConnectionResetError):
            old.recv(10)
        self.assertFalse(p.link("l")["listening"])
        status, doc = p.api("POST", "/links/l/heal")
        self.assertEqual((status, doc["listening"], doc["faults"]), (200, True, []))
        self.assertEqual(self.roundtrip(self.lport)[0], b"ping")
        # cut, then POST /heal (every link)
        p.fault("l", type="cut")
        status, doc = p.api("POST", "/heal")
        self.assertEqual((status, doc["links"][0]["listening"]), (200, True))
        self.assertEqual(self.roundtrip(self.lport)[0], b"ping")

    def test_probability_zero_affects_none_and_one_all(self):
        p = self.proxy(self.server(echo))
        f0 = p.fault("l", type="latency", ms=400, probability=0)
        for _ in range(5):
            self.assertLess(self.roundtrip(self.lport)[1], 0.3)
        self.idle(p)  # the connections above are gone: they are not tossed for
        f1 = p.fault("l", type="latency", ms=100, probability=1, direction="down")
        for _ in range(3):
            self.assertGreaterEqual(self.roundtrip(self.lport)[1], 0.1)
        faults = {f["id"]: f for f in p.link("l")["faults"]}
        self.assertEqual(faults[f0["id"]]["affected"], 0)
        self.assertEqual(faults[f1["id"]]["affected"], 3)

    # ---- the API -------------------------------------------------------------------

    def test_api_errors(self):
        p = self.proxy(self.server(echo))
        cases = [
            ({"type": "teleport"}, "unknown fault type 'teleport'"),
            ({"type": "latency"}, "needs ms"),
            ({"type": "latency", "ms": 5, "jiter_ms": 1}, "unknown parameter 'jiter_ms'"),
            ({"type": "latency", "ms": "5"}, "ms must be a number"),
            ({"type": "latency", "ms": -1}, "ms must be a number from 0"),
            ({"type": "cut", "probability": 0.5}, "probability must be 1"),
            ({"type": "reset", "direction": "up"}, "direction must be \"both\""),
            ({"type": "blackhole", "probability": 2}, "probability must be a number from 0 to 1"),
            ({"type": "slice", "bytes": 1.5}, "bytes must be an integer"),
            ({"type": "latency", "ms": 1, "direction": "sideways"}, "direction must be"),
        ]
        for body, message in cases:
            status, doc = p.api("POST", "/links/l/faults", body)
            self.assertEqual(status, 400, body)
            self.assertIn(message, doc["error"], body)
        for raw, message in [("{", "invalid JSON"), ('{"type": {"a": 1}}', "nested"), ("[1]", "an object"),
                             ('{"type":"cut"} x', "text after")]:
            status, doc = p.api("POST", "/links/l/faults", raw=raw)
            self.assertEqual(status, 400, raw)
            self.assertIn(message, doc["error"])
        self.assertEqual(p.api("GET", "/links/nope")[0], 404)
        self.assertEqual(p.api("POST", "/links/nope/faults", {"type": "cut"})[0], 404)
        self.assertEqual(p.api("DELETE", "/links/l/faults/99")[0], 404)
        self.assertEqual(p.api("GET", "/nowhere")[0], 404)
        self.assertEqual(p.api("PUT", "/links")[0], 405)
        status, doc = p.api("POST", "/links", {"name": "l", "listen": "127.0.0.1:1", "upstream": "x:1"})
        self.assertEqual((status, doc["error"]), (409, "link l exists"))
        status, doc = p.api("POST", "/links", {"name": "m", "listen": "127.0.0.1:1", "upstream": "x:1", "tls": True})
        self.assertEqual(status, 400)
        self.assertIn("unknown key 'tls'", doc["error"])
        self.assertEqual(p.api("POST", "/links", {"name": "m", "listen": "nowhere", "upstream": "x:1"})[0], 400)
        # a link created at run time forwards, and goes away
        port = free_port()
        status, doc = p.api("POST", "/links", {"name": "m", "listen": f"127.0.0.1:{port}",
                                               "upstream": self.servers[0].addr})
        self.assertEqual((status, doc["name"], doc["listening"]), (201, "m", True))
        self.assertEqual(self.roundtrip(port)[0], b"ping")
        self.assertEqual([l["name"] for l in p.api("GET", "/links")[1]["links"]], ["l", "m"])
        self.assertEqual(p.api("DELETE", "/links/m")[0], 204)
        with self.assertRaises(ConnectionRefusedError):
            connect(port)
        rc, out, _ = p.stop()
        self.assertEqual(rc, 0)

    def test_bad_command_lines(self):
        r = subprocess.run([HALO, "proxy"], capture_output=True, text=True, env=halo_env(), timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--control HOST:PORT is required", r.stderr)
        r = subprocess.run([HALO, "proxy", "--control", f"127.0.0.1:{free_port()}", "--link", "x"],
                           capture_output=True, text=True, env=halo_env(), timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT", r.stderr)


# ---- netfault, from checks ------------------------------------------------------

CHECK = """
local netfault, http, time = require "netfault", require "http", require "time"
return {{ title = "netfault", timeout = 30, run = function(t, stack)
  local proxy = netfault.proxy()
  local link = proxy:link("db")
  {body}
end }}
"""


class NetfaultTest(HaloTestCase):
    def setUp(self):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO}")
        self.upstream = Server(echo)
        self.addCleanup(self.upstream.close)
        self.lport = free_port()
        self.p = Proxy(f"db=127.0.0.1:{self.lport},{self.upstream.addr}")
        self.addCleanup(self.p.stop)
        self.state = tempfile.mkdtemp(prefix="halo-state-")
        self.addCleanup(shutil.rmtree, self.state, True)

    def stack(self, allow=True):
        path = self.tmp_path("stack.lua")
        with open(path, "w") as f:
            f.write(f'return {{ name = "netfault test", allow_faults = {str(allow).lower()}, '
                    f'proxy = {{ control = "http://127.0.0.1:{self.p.control}" }} }}\n')
        return path

    def run_check(self, body, allow=True):
        d = self.checks_dir({"1-netfault.lua": CHECK.format(body=body)})
        out = self.tmp_path("report.json")
        r = subprocess.run([HALO, "run", "--checks", d, "--stack", self.stack(allow), "--format", "json", "--out", out],
                           capture_output=True, text=True, timeout=60, env=halo_env({"XDG_STATE_HOME": self.state}))
        with open(out) as f:
            return parse_report(f.read(), r)

    def assertHealed(self):
        info = self.p.link("db")
        self.assertEqual((info["faults"], info["listening"]), ([], True))

    def test_faults_apply_and_the_end_of_the_check_heals_them(self):
        rep = self.run_check("""
  local f = assert(link:latency{ ms = 50, direction = "down" })
  assert(link:blackhole{ direction = "up", probability = 0 })
  assert(link:cut())
  local info = assert(link:info())
  t:expect(#info.faults == 3 and not info.listening, "three faults, cut: %s", #info.faults)
  assert(f:remove()); assert(f:remove())   -- idempotent
  t:expect(#assert(link:info()).faults == 2, "one removed")
  local ok, err = pcall(link.latency, link, { ms = 1, jitter_ms = 2 })
  t:expect(not ok and tostring(err):find("unknown option 'jitter_ms'"), "unknown keys raise: %s", tostring(err))
  local none, why = netfault.proxy{ url = "http://127.0.0.1:1" }:link("db"):info()
  t:expect(none == nil and why.kind == "netfault", "an absent proxy is nil, err: %s", tostring(why))
""")
        self.assertCheck(rep, 1, "PASS")
        self.assertHealed()
        actions = [a["action"] for a in rep.check(1)["actions"]]
        self.assertEqual(actions, ["netfault latency", "netfault blackhole", "netfault cut", "netfault remove latency",
                                   "netfault heal"])

    def test_heals_after_a_failure_and_an_error(self):
        rep = self.run_check('assert(link:cut()); t:expect(false, "fails on purpose")')
        self.assertCheck(rep, 1, "FAIL")
        self.assertHealed()
        rep = self.run_check('assert(link:reset()); assert(link:limit{ bytes = 10 }); error("boom")')
        self.assertCheck(rep, 1, "ERROR")
        self.assertHealed()

    def test_refused_without_allow_faults(self):
        rep = self.run_check("link:cut()", allow=False)
        self.assertCheck(rep, 1, "ERROR", "netfault: refusing to cut link db: this stack does not allow faults")
        self.assertHealed()
        self.assertEqual(self.p.link("db")["counters"]["accepted"], 0)

    def test_the_html_timeline_marks_the_fault_and_its_heal(self):
        import http.server

        class Ok(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass
        web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        threading.Thread(target=web.serve_forever, daemon=True).start()
        self.addCleanup(web.server_close)
        self.addCleanup(web.shutdown)
        port = free_port()
        self.assertEqual(self.p.api("POST", "/links", {"name": "web", "listen": f"127.0.0.1:{port}",
                                                      "upstream": f"127.0.0.1:{web.server_address[1]}"})[0], 201)
        d = self.checks_dir({"1-netfault.lua": CHECK.format(body=f"""
  local web = proxy:link("web")
  local url = "http://127.0.0.1:{port}/"
  t:expect(http.get(url).status == 200, "through the proxy")
  assert(web:cut())
  t:expect(http.get(url) == nil, "cut")
  assert(web:heal())
  t:expect(http.get(url).status == 200, "healed")
""")})
        html = self.tmp_path("run.html")
        r = subprocess.run([HALO, "run", "--checks", d, "--stack", self.stack(), "--report", f"html:{html}"],
                           capture_output=True, text=True, timeout=60, env=halo_env({"XDG_STATE_HOME": self.state}))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(html) as f:
            text = f.read()
        self.assertRegex(text, r'<g class="action-marker"><title>netfault cut link web at [\d.]+ s</title>')
        self.assertRegex(text, r'<g class="action-marker recovery"><title>netfault heal link web at')
        self.assertIn(">cut web</text>", text)
        self.assertIn(">heal web</text>", text)

    def test_halo_cleanup_heals_after_kill_9(self):
        d = self.checks_dir({"1-netfault.lua": CHECK.format(body="""
  assert(link:cut())
  t:log("cut")
  time.sleep(60)
""")})
        env = {"XDG_STATE_HOME": self.state}
        h = Running(["run", "--checks", d, "--stack", self.stack(), "-v"], env=env)
        self.addCleanup(h.kill)
        h.wait_for_stderr(r"cut", timeout=20)
        self.assertFalse(self.p.link("db")["listening"])
        kill_9_run(h)
        self.assertFalse(self.p.link("db")["listening"], "nothing healed it yet")
        r = subprocess.run([HALO, "cleanup"], capture_output=True, text=True, timeout=60,
                           env=halo_env(env), cwd=tempfile.gettempdir(), stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("heal link db", r.stdout + r.stderr)
        self.assertHealed()


if __name__ == "__main__":
    unittest.main()
