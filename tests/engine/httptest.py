"""Helpers for the http/traffic tests: start the local servers, run Lua
through `halo exec`, read back one JSON result line.

Every server binds 127.0.0.1 (or a Unix socket in a temp dir) and is stopped
by its pid; no test traffic leaves loopback.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("HALO_SOURCE") or os.path.abspath(os.path.join(HERE, "..", ".."))
HALO = os.environ.get("HALO_BIN") or os.path.join(SOURCE, "build", "halo")
SERVERS = os.path.join(SOURCE, "tests", "servers")
EDGE_SERVER = os.path.join(SERVERS, "edge_server.py")

if SERVERS not in sys.path:
    sys.path.insert(0, SERVERS)

RESULT = "RESULT "

# Prepended to every script: emit(value) prints the one line the test reads.
PRELUDE = """\
local function emit(value) print("RESULT " .. json.encode(value)) end
local BASE = arg[1]
local UNIX = arg[2]
"""


class EdgeServer:
    """tests/servers/edge_server.py as a child process, on TCP and a Unix socket."""

    def __init__(self, tls_cert=None, tls_key=None, client_ca=None):
        self.dir = tempfile.mkdtemp(prefix="halo-edge-")
        self.unix = os.path.join(self.dir, "edge.sock")
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        cmd = [sys.executable, EDGE_SERVER, "--port-file", port_file, "--unix", self.unix]
        if tls_cert:
            cmd += ["--tls-cert", tls_cert, "--tls-key", tls_key]
        if client_ca:
            cmd += ["--client-ca", client_ca]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 10
        while not (os.path.exists(port_file) and os.path.exists(self.unix)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("edge server did not start")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        self.base = "%s://127.0.0.1:%d" % ("https" if tls_cert else "http", self.port)

    def url(self, path):
        return self.base + path

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_certs(directory):
    """A CA, a server certificate for 127.0.0.1/localhost and a client
    certificate, all signed by the CA, with openssl. Returns their paths."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise unittest.SkipTest("openssl is not installed")
    p = {name: os.path.join(directory, name + ".pem")
         for name in ["ca", "ca.key", "server", "server.key", "client", "client.key"]}

    def run(*args):
        subprocess.run([openssl] + list(args), check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=halo test CA",
        "-keyout", p["ca.key"], "-out", p["ca"])
    for who, ext in [("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
                     ("client", "extendedKeyUsage=clientAuth")]:
        csr = os.path.join(directory, who + ".csr")
        extfile = os.path.join(directory, who + ".ext")
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=halo test " + who,
            "-keyout", p[who + ".key"], "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", p["ca.key"], "-CAcreateserial",
            "-days", "2", "-extfile", extfile, "-out", p[who])
    return p


class HaloRun:
    def __init__(self, proc, seconds):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds

    def result(self):
        lines = [l for l in self.stdout.splitlines() if l.startswith(RESULT)]
        if not lines:
            raise AssertionError("no RESULT line (exit %s)\nstdout:\n%s\nstderr:\n%s"
                                 % (self.code, self.stdout, self.stderr))
        return json.loads(lines[-1][len(RESULT):])

    def __repr__(self):
        return "exit %s after %.2fs\nstdout:\n%s\nstderr:\n%s" % (self.code, self.seconds, self.stdout, self.stderr)


class HaloTestCase(unittest.TestCase):
    """One edge server per class; run_lua() runs a script against it."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest("no halo binary at %s (set HALO_BIN)" % HALO)
        cls.edge = EdgeServer()
        cls.tmp = tempfile.mkdtemp(prefix="halo-httptest-")

    @classmethod
    def tearDownClass(cls):
        cls.edge.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write_script(self, code, name=None):
        path = os.path.join(self.tmp, name or (self.id().rsplit(".", 1)[-1] + ".lua"))
        with open(path, "w") as f:
            f.write(PRELUDE + textwrap.dedent(code))
        return path

    def run_lua(self, code, timeout=60, wrapper=(), halo_args=(), extra_args=()):
        """halo exec SCRIPT BASE UNIX [extra...]; returns a HaloRun."""
        path = self.write_script(code)
        cmd = list(wrapper) + [HALO, "exec"] + list(halo_args) + [path, self.edge.base, self.edge.unix] + list(extra_args)
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.tmp,
                              errors="replace")
        return HaloRun(proc, time.monotonic() - started)

    def lua_result(self, code, **kw):
        """Runs a script that must succeed and emit() one value; returns it."""
        run = self.run_lua(code, **kw)
        self.assertEqual(run.code, 0, repr(run))
        return run.result()

    def assertRaisesBadArgument(self, code, fragment=None):
        run = self.run_lua(code)
        self.assertEqual(run.code, 3, repr(run))
        self.assertIn("bad argument", run.stderr, repr(run))
        if fragment:
            self.assertIn(fragment, run.stderr, repr(run))
        self.assertNotIn(RESULT, run.stdout, "the script went on past the misuse")
        return run
