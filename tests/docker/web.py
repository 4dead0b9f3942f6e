"""The "web" service of the docker tests' compose project (tests/docker/).

A tiny HTTP server on 127.0.0.1:$HALOTEST_WEB_PORT (the host's network:
the container runs with network_mode: host):

  GET /health      200 "ok"            (the healthcheck's target)
  GET /env/NAME    200 and the value of the environment variable NAME,
                   404 "unset" when it is not set (how the tests see that
                   compose recreated the service with new environment)
  GET /whoami      200 {"pid", "hostname", "started"} as JSON
  GET /time        200 and time.time(), the service's wall clock (how the
                   tests see a clock that docker's skew moved)

It logs one line per request on stderr and exits at once on SIGTERM or
SIGINT, so `down` and `stop` take no grace period.
"""
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ["HALOTEST_WEB_PORT"])
STARTED = time.time()


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, "ok")
        elif self.path.startswith("/env/"):
            value = os.environ.get(self.path[len("/env/"):])
            if value is None:
                self._send(404, "unset")
            else:
                self._send(200, value)
        elif self.path == "/time":
            self._send(200, repr(time.time()))
        elif self.path == "/whoami":
            self._send(200, json.dumps({"pid": os.getpid(), "hostname": os.uname().nodename,
                                        "started": STARTED}), "application/json")
        else:
            self._send(404, "no such path")

    def log_message(self, fmt, *args):
        sys.stderr.write("web: " + (fmt % args) + "\n")


def main():
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print(f"web: listening on 127.0.0.1:{PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
