"""docker.daemon{ host = "tcp://...", tls = { ca, cert, key } } against a
real dockerd that only speaks TLS and wants a client certificate
(`--tlsverify`), as a remote swarm node or a production host does.

The test makes a throwaway CA with openssl (a server certificate for
127.0.0.1, a client certificate, and a second CA's client certificate the
daemon must refuse), starts its own dockerd (Debian's docker.io; own
data-root, exec-root, pidfile; no bridge, no iptables) listening on a free
127.0.0.1 port only, asks it through halo, and stops it by its pid.

- with the right client certificate: version() and containers{} answer;
- with a certificate of another CA: nil, err of kind connect, naming the
  daemon, and halo goes on;
- without tls: nil, err (the daemon speaks TLS, not plain HTTP);
- misuse raises: tls on a unix:// host, a tls table missing a file.

Root only (dockerd), skipped otherwise.

Run: cd tests/engine && HALO_BIN=../../build/halo HALO_SOURCE=../.. \
     python3 -m unittest -v test_docker_tls
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from halotest import HALO, run

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", cwd=d)


def make_cert(d, ca, name, ext):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem",
            "-out", f"{name}.csr", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


class DockerOverTLS(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("starting a dockerd needs root (CI runs the tests as root)")
        if not os.access(DOCKERD, os.X_OK) or not shutil.which("openssl"):
            raise unittest.SkipTest("needs dockerd (docker.io) and openssl")
        if not os.access(HALO, os.X_OK):
            raise unittest.SkipTest(f"no halo binary at {HALO} (set HALO_BIN)")
        cls.dir = tempfile.mkdtemp(prefix="halo-docker-tls-")
        d = cls.dir
        make_ca(d, "ca")
        make_ca(d, "otherca")
        make_cert(d, "ca", "server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        make_cert(d, "ca", "client", "extendedKeyUsage=clientAuth\n")
        make_cert(d, "otherca", "stranger", "extendedKeyUsage=clientAuth\n")
        cls.port = free_port()
        with open(os.path.join(d, "daemon.json"), "w") as f:
            f.write("{}")
        cls.log = open(os.path.join(d, "dockerd.log"), "w")
        cls.daemon = subprocess.Popen(
            [DOCKERD, f"--config-file={d}/daemon.json", f"--data-root={d}/data", f"--exec-root={d}/exec",
             f"--pidfile={d}/dockerd.pid", "-H", f"tcp://127.0.0.1:{cls.port}", "--tlsverify",
             f"--tlscacert={d}/ca.pem", f"--tlscert={d}/server.pem", f"--tlskey={d}/server-key.pem",
             "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false"],
            stdout=cls.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", cls.port)) == 0:
                    break
            if cls.daemon.poll() is not None or time.monotonic() > deadline:
                cls.tearDownClass()
                raise AssertionError(f"dockerd did not listen on {cls.port}; see {d}/dockerd.log")
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        daemon = getattr(cls, "daemon", None)
        if daemon and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)   # by its pid: this test started it
            try:
                daemon.wait(timeout=40)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=10)
        if getattr(cls, "log", None):
            cls.log.close()
        if getattr(cls, "dir", None):
            # what the daemon left mounted under its exec-root goes first
            subprocess.run(["sh", "-c", f"grep -o ' {cls.dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"],
                           capture_output=True, timeout=30)
            shutil.rmtree(cls.dir, ignore_errors=True)

    def eval(self, code):
        res = run(["eval", code], timeout=60)
        lines = [l for l in res.out.splitlines() if l.startswith("RESULT ")]
        self.assertTrue(lines, f"no RESULT line: {res!r}")
        return json.loads(lines[-1][len("RESULT "):]), res

    def tls(self, who):
        d = self.dir
        return f'{{ ca = "{d}/ca.pem", cert = "{d}/{who}.pem", key = "{d}/{who}-key.pem" }}'

    def test_the_right_client_certificate_is_let_in(self):
        r, _ = self.eval(f"""
            local d = docker.daemon{{ host = "tcp://127.0.0.1:{self.port}", tls = {self.tls("client")} }}
            local v, err = d:version()
            local list, lerr = d:containers{{ all = true }}
            print("RESULT " .. json.encode{{ api = v and v.api, host = v and v.host, err = err and err.message,
                                             n = list and #list, lerr = lerr and lerr.message, str = tostring(d) }})
        """)
        self.assertIsNone(r.get("err"))
        self.assertRegex(r["api"], r"^1\.\d+$")
        self.assertEqual(r["host"], f"tcp://127.0.0.1:{self.port}")
        self.assertEqual(r["n"], 0, f"a fresh daemon has no containers: {r}")
        self.assertEqual(r["str"], f"docker daemon tcp://127.0.0.1:{self.port}")

    def test_a_stranger_and_no_tls_are_refused_with_an_error(self):
        r, res = self.eval(f"""
            local stranger = docker.daemon{{ host = "tcp://127.0.0.1:{self.port}", tls = {self.tls("stranger")} }}
            local v1, e1 = stranger:version()
            local plain = docker.daemon{{ host = "tcp://127.0.0.1:{self.port}" }}
            local v2, e2 = plain:version()
            print("RESULT " .. json.encode{{ v1 = v1 and v1.api, k1 = e1 and e1.kind, m1 = e1 and e1.message,
                                             v2 = v2 and v2.api, m2 = e2 and e2.message }})
        """)
        self.assertIsNone(r.get("v1"), "a client certificate of another CA was let in")
        self.assertEqual(r["k1"], "connect")
        self.assertIn(f"tcp://127.0.0.1:{self.port}", r["m1"])
        self.assertIsNone(r.get("v2"), "plain HTTP got an answer from a TLS-only daemon")
        self.assertTrue(r["m2"])
        self.assertEqual(res.rc, 0, res)

    def test_misuse_raises(self):
        r, _ = self.eval(f"""
            local function why(f) local ok, err = pcall(f) return ok and "no error" or tostring(err) end
            print("RESULT " .. json.encode{{
              unix_tls = why(function() docker.daemon{{ host = "unix:///x.sock", tls = {self.tls("client")} }} end),
              missing = why(function() docker.daemon{{ host = "tcp://127.0.0.1:1", tls = {{ ca = "a", cert = "b" }} }} end),
              no_port = why(function() docker.daemon{{ host = "tcp://127.0.0.1" }} end),
            }})
        """)
        self.assertIn("tls is for tcp:// hosts", r["unix_tls"])
        self.assertIn("tls.key must be a file path", r["missing"])
        self.assertIn("neither unix:///path nor tcp://host:port", r["no_port"])
        for what, said in r.items():   # the script's line, not the module's
            self.assertRegex(said, r"^eval:\d+: bad argument #1 to 'daemon'", what)


if __name__ == "__main__":
    unittest.main()
