#!/usr/bin/env python3
"""A throwaway nginx for tests: a free 127.0.0.1 port, a temporary prefix and
config, a static directory, and an access log that records which connection
served each request (and, given tls=(cert, key), HTTPS with HTTP/2) ($connection and $connection_requests), so tests can
count how many connections a client opened.

    from nginx import Nginx
    with Nginx(static_dir) as ngx:          # or ngx = Nginx(d); ngx.start()
        url = ngx.url("/index.html")
        ...
        ngx.access_log()                    # [{"connection": 3, "requests": 1, "status": 200, "uri": "/"}]

nginx runs in the foreground (daemon off) as our own child, so it is stopped
by its pid (SIGQUIT, then SIGKILL), never by name. Run as a script it starts
one and prints the port, until Ctrl-C.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

CONFIG = """\
worker_processes 1;
daemon off;
master_process on;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format halo '$connection $connection_requests $status "$request_uri" $body_bytes_sent';
    access_log {prefix}/access.log halo;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_timeout 60s;
    keepalive_requests 100000;
    types {{ text/plain txt; text/html html; application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} backlog=4096{listen_tls};
        server_name localhost;{tls}
        root {root};
        location / {{ }}
    }}
}}
"""


def nginx_binary():
    for path in [shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx"]:
        if path and os.access(path, os.X_OK):
            return path
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, root, binary=None, tls=None):
        """tls=(cert, key): serve HTTPS, with HTTP/2 offered over ALPN."""
        self.root = os.path.abspath(root)
        self.tls = tls
        self.binary = binary or nginx_binary()
        self.prefix = None
        self.proc = None
        self.port = None

    def url(self, path="/"):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.port, path)

    def start(self, attempts=5):
        if not self.binary:
            raise RuntimeError("nginx is not installed")
        self.prefix = tempfile.mkdtemp(prefix="halo-nginx-")
        os.makedirs(os.path.join(self.prefix, "tmp"))
        last_error = ""
        for _ in range(attempts):  # the free port can be taken between probe and bind
            self.port = free_port()
            conf = os.path.join(self.prefix, "nginx.conf")
            with open(conf, "w") as f:
                # As root, workers would switch to "nobody", who cannot read a 0700 temp dir.
                tls = ""
                if self.tls:
                    tls = "\n        ssl_certificate %s;\n        ssl_certificate_key %s;" % tuple(
                        os.path.abspath(p) for p in self.tls)
                f.write(CONFIG.format(prefix=self.prefix, port=self.port, root=self.root, tls=tls,
                                      listen_tls=" ssl http2" if self.tls else "",
                                      user="user root;" if os.geteuid() == 0 else ""))
            err = open(os.path.join(self.prefix, "stderr.log"), "w")
            self.proc = subprocess.Popen([self.binary, "-p", self.prefix, "-c", conf,
                                          "-e", os.path.join(self.prefix, "error.log")],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
            err.close()
            if self._wait_ready():
                return self
            last_error = self.error_log()
            self.stop(remove=False)
        raise RuntimeError("nginx did not start: " + last_error[-2000:])

    def _wait_ready(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                # that probe is a connection with no request: nginx logs nothing for it
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def error_log(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.prefix, name)) as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def access_log(self):
        """Parsed access log: one dict per request, in order."""
        entries = []
        try:
            with open(os.path.join(self.prefix, "access.log")) as f:
                for line in f:
                    conn, reqs, status, rest = line.split(" ", 3)
                    uri, _, sent = rest.rpartition(" ")
                    entries.append({"connection": int(conn), "requests": int(reqs),
                                    "status": int(status), "uri": uri.strip('"'), "bytes": int(sent)})
        except FileNotFoundError:
            pass
        return entries

    def clear_access_log(self):
        """Empties the log in place (nginx keeps its descriptor, opened O_APPEND)."""
        open(os.path.join(self.prefix, "access.log"), "w").close()

    def stop(self, remove=True):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if remove and self.prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    ngx = Nginx(sys.argv[1] if len(sys.argv) > 1 else ".").start()
    print(ngx.port, flush=True)
    try:
        signal.sigwait([signal.SIGINT, signal.SIGTERM])
    finally:
        ngx.stop()
