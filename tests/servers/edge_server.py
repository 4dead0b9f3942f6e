#!/usr/bin/env python3
"""A small HTTP server for the edges of an HTTP client, stdlib only.

Binds 127.0.0.1 on a free port (prints the port as the first line on stdout,
and writes it to --port-file when given), and optionally also serves the same
routes on a Unix socket (--unix PATH). With --tls-cert/--tls-key the TCP port
speaks HTTPS (and with --client-ca it requires a client certificate). Threaded: one thread per connection,
keep-alive on (HTTP/1.1).

Routes (GET unless said; every route also answers HEAD and other methods):

  /ok                     200 "ok\\n"
  /status/<n>             status n, body "status n\\n" (none for 204 and 304)
  /echo                   the request back as JSON: method, path, query,
                          headers ([name, value] pairs in order), body (text
                          when UTF-8, else null), body_b64, body_len, sha256
  /slow-headers?delay=s   waits s seconds (default 1), then 200 "slow\\n"
  /slow-body?delay=s&size=n&drip=0|1
                          headers (Content-Length: n, default 10) at once;
                          then after s seconds the body (drip=1: one byte
                          every s seconds)
  /drip?size=n            one byte every 2 s, n bytes (default 5)
  /big?size=n             n bytes of 'x' (default 1 MiB), with Content-Length
  /redirect-loop          302 to itself
  /redirect?to=URL        302 to URL (any scheme: file:///etc/passwd, ftp://)
  /chunked                Transfer-Encoding: chunked, 5 chunks
  /bad-status             an invalid status line
  /reset                  headers promising 100000 bytes, 1000 sent, then RST
                          (SO_LINGER 0)
  /http10                 an HTTP/1.0 reply, Connection: close, no
                          Content-Length: the body ends when the socket closes
  /non-utf8               bytes 0x80..0xff four times; X-Byte-Sum and
                          X-Sha256 describe them
  /multipart-echo         POST multipart/form-data; JSON list of parts with
                          name, filename, content_type, size, sha256, sum
  /flaky?fail_every=n&key=k
                          every n-th request (per key, counted from 1) is 500
  /replica?name=x&header=H
                          200 with X-Served-By: x (or header H: x)
  /set-cookies            two Set-Cookie headers
  /gzip                   a gzip-encoded body (Content-Encoding: gzip)

Stop it with SIGTERM (by pid).
"""
import argparse
import base64
import gzip
import hashlib
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

NON_UTF8 = bytes(range(0x80, 0x100)) * 4
GZIP_PLAIN = b"halo gzip body\n" * 20
FLAKY_COUNTS = {}
FLAKY_LOCK = threading.Lock()


def arg(query, name, default, convert=str):
    values = query.get(name)
    return convert(values[0]) if values else default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "edge/1"
    verbose = False

    # ---- plumbing ----------------------------------------------------------

    def setup(self):
        context = getattr(self.server, "tls_context", None)
        if context is not None:  # the handshake here, in this connection's thread
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()
        if self.connection.family != socket.AF_UNIX:
            # headers and body go out in separate writes: without this, Nagle
            # and the client's delayed ACK add 40 ms to every response
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # the Unix socket has no client address
        if self.verbose:
            sys.stderr.write("edge: " + (fmt % args) + "\n")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body=b"", headers=(), content_type="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, value, status=200):
        self.reply(status, json.dumps(value), content_type="application/json")

    def raw(self, data):
        """Writes bytes as they are and ends the connection after them."""
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True

    def dispatch(self):
        url = urlsplit(self.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.body = self.read_body()
        path = url.path
        if path.startswith("/status/"):
            return self.route_status(path[len("/status/"):])
        route = ROUTES.get(path)
        if route is None:
            return self.reply(404, "no route %s\n" % path)
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away: fine here

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = dispatch

    # ---- routes --------------------------------------------------------------

    def route_ok(self):
        self.reply(200, "ok\n")

    def route_status(self, n):
        try:
            code = int(n)
        except ValueError:
            return self.reply(400, "bad status\n")
        # 1xx, 204 and 304 have no body: a body there would be read as the
        # start of the next response on a kept-alive connection
        self.reply(code, "" if code in (204, 304) or code < 200 else "status %d\n" % code)

    def route_echo(self):
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        self.reply_json({
            "method": self.command,
            "path": urlsplit(self.path).path,
            "raw_query": urlsplit(self.path).query,
            "query": self.query,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": text,
            "body_b64": base64.b64encode(self.body).decode(),
            "body_len": len(self.body),
            "sha256": hashlib.sha256(self.body).hexdigest(),
        })

    def route_slow_headers(self):
        time.sleep(arg(self.query, "delay", 1.0, float))
        self.reply(200, "slow\n")

    def route_slow_body(self):
        delay = arg(self.query, "delay", 1.0, float)
        size = arg(self.query, "size", 10, int)
        drip = arg(self.query, "drip", 0, int)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        if drip:
            for _ in range(size):
                time.sleep(delay)
                self.wfile.write(b"b")
                self.wfile.flush()
        else:
            time.sleep(delay)
            self.wfile.write(b"b" * size)

    def route_drip(self):
        size = arg(self.query, "size", 5, int)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()
        for _ in range(size):
            self.wfile.write(b"d")
            self.wfile.flush()
            time.sleep(2)

    def route_big(self):
        size = arg(self.query, "size", 1 << 20, int)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"x" * 65536
        left = size
        while left > 0:
            n = min(left, len(chunk))
            self.wfile.write(chunk[:n])
            left -= n

    def route_redirect_loop(self):
        self.reply(302, "again\n", [("Location", "/redirect-loop")])

    def route_redirect(self):
        self.reply(302, "elsewhere\n", [("Location", arg(self.query, "to", "/ok"))])

    def route_chunked(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(5):
            piece = ("chunk %d\n" % i).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            time.sleep(0.01)
        self.wfile.write(b"0\r\n\r\n")

    def route_bad_status(self):
        self.raw(b"HTTP/1.1 2x0 Not A Number\r\nContent-Length: 3\r\n\r\nbad")

    def route_reset(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"r" * 1000)
        self.wfile.flush()
        time.sleep(0.1)
        # Linger on, time 0: close() sends RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        self.close_connection = True

    def route_http10(self):
        self.raw(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                 b"an HTTP/1.0 body that ends when the connection closes\n")

    def route_non_utf8(self):
        self.reply(200, NON_UTF8, [("X-Byte-Sum", str(sum(NON_UTF8))),
                                   ("X-Sha256", hashlib.sha256(NON_UTF8).hexdigest())],
                   content_type="application/octet-stream")

    def route_multipart_echo(self):
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            return self.reply(400, "not multipart: %s\n" % ctype)
        self.reply_json({"parts": parse_multipart(ctype, self.body), "length": len(self.body)})

    def route_flaky(self):
        every = arg(self.query, "fail_every", 2, int)
        key = arg(self.query, "key", "")
        with FLAKY_LOCK:
            FLAKY_COUNTS[key] = n = FLAKY_COUNTS.get(key, 0) + 1
        if n % every == 0:
            self.reply(500, "flaky failure %d\n" % n)
        else:
            self.reply(200, "flaky ok %d\n" % n)

    def route_replica(self):
        header = arg(self.query, "header", "X-Served-By")
        self.reply(200, "served\n", [(header, arg(self.query, "name", "unknown"))])

    def route_set_cookies(self):
        self.reply(200, "cookies\n", [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; HttpOnly")])

    def route_gzip(self):
        self.reply(200, gzip.compress(GZIP_PLAIN, mtime=0), [("Content-Encoding", "gzip")])


def parse_multipart(ctype, body):
    """multipart/form-data by hand, byte-exact: [{name, filename, content_type, size, sha256, sum}]."""
    boundary = None
    for param in ctype.split(";")[1:]:
        k, _, v = param.strip().partition("=")
        if k.lower() == "boundary":
            boundary = v.strip('"').encode()
    if not boundary:
        return []
    parts = []
    delimiter = b"\r\n--" + boundary
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, _, data = chunk[2:].partition(b"\r\n\r\n")  # skip the CRLF after the delimiter
        info = {"name": None, "filename": None, "content_type": None}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            hname, _, hvalue = line.partition(":")
            if hname.lower() == "content-disposition":
                for param in hvalue.split(";")[1:]:
                    k, _, v = param.strip().partition("=")
                    if k in ("name", "filename"):
                        info[k] = v.strip('"')
            elif hname.lower() == "content-type":
                info["content_type"] = hvalue.strip()
        info.update(size=len(data), sha256=hashlib.sha256(data).hexdigest(), sum=sum(data))
        parts.append(info)
    return parts


ROUTES = {name: getattr(Handler, "route_" + name.strip("/").replace("-", "_"))
          for name in ["/ok", "/echo", "/slow-headers", "/slow-body", "/drip", "/big",
                       "/redirect-loop", "/redirect", "/chunked", "/bad-status", "/reset",
                       "/http10", "/non-utf8", "/multipart-echo", "/flaky", "/replica",
                       "/set-cookies", "/gzip"]}


class TCPServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a hundred clients connect at once


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--unix", metavar="PATH", help="also serve on this Unix socket")
    p.add_argument("--tls-cert", help="serve HTTPS on the TCP port with this certificate (PEM)")
    p.add_argument("--tls-key", help="the certificate's key (PEM)")
    p.add_argument("--client-ca", help="require a client certificate signed by this CA (PEM)")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args()
    Handler.verbose = a.verbose

    tcp = TCPServer(("127.0.0.1", a.port), Handler)
    tcp.tls_context = None
    if a.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(a.tls_cert, a.tls_key)
        if a.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(a.client_ca)
        tcp.tls_context = context
    port = tcp.server_address[1]
    if a.unix:
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        unix = UnixServer(a.unix, Handler)
        threading.Thread(target=unix.serve_forever, daemon=True).start()
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    print(port, flush=True)
    try:
        tcp.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
