#!/usr/bin/env python3
"""An HTTP server that misbehaves on purpose, for the fault tests
(tests/engine/test_faults.py), stdlib only. Binds 127.0.0.1 on a free port
and writes the port to --port-file (and stdout) once every route is ready.
Threaded, one thread per connection. Stop it with SIGTERM (by pid).

Routes (GET):

  /ok                     200 "ok\\n"
  /endless                200, chunked, 64 KiB chunks of 'e' for ever (until
                          the client goes away); no Content-Length
  /gzip-bomb?layers=1     Content-Encoding: gzip, a gzip member that inflates
                          to --bomb-mib MiB of zeros (default 4096: 4 GiB
                          from about 4 MB on the wire)
  /gzip-bomb?layers=2     Content-Encoding: gzip, gzip: the layer-1 bomb
                          gzipped again, a few KB on the wire, 4 GiB decoded
  /gzip-bomb?te=1         the layer-1 bomb as Transfer-Encoding: gzip, chunked
                          (the body's length is in X-Wire-Length in all three)
  /headers?n=N&same=0|1   200 with N extra headers (X-Flood-<i>: v, or the
                          same name N times with same=1), then "ok"
  /drip-headers?every=s   the status line, then the rest of the header block
                          one byte every s seconds (default 3)
  /drip-body?every=s      headers (Content-Length: 1000000) at once, then one
                          byte every s seconds (default 3)
  /redirect?to=URL        302 to URL, whatever its scheme
  /redirect-loop          302 to itself

GET /gzip-bomb answers X-Decoded-Length (the size fully inflated).
"""
import argparse
import os
import socketserver
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit


# ---- a gzip bomb without compressing gigabytes ------------------------------------
#
# A deflate block that ends with a full flush resets the compressor's state,
# so the bytes for 16 MiB of zeros can be repeated as often as wanted; the
# gzip trailer's CRC-32 of all those zeros comes from crc32_combine (zlib's
# algorithm), not from hashing gigabytes.

def _gf2_times(mat, vec):
    s, i = 0, 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat):
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1, crc2, len2):
    """CRC-32 of A||B from crc(A), crc(B) and len(B)."""
    if len2 == 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def gzip_bomb(mib):
    """A gzip member inflating to `mib` MiB of zeros (mib a multiple of 16)."""
    block_len = 16 << 20
    n = max(1, mib // 16)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b"\0" * block_len) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush(zlib.Z_FINISH)
    crc, length = zlib.crc32(b"\0" * block_len), block_len
    total_crc, total_len, k = 0, 0, n
    while k:  # binary doubling over the repeats
        if k & 1:
            total_crc = crc32_combine(total_crc, crc, length) if total_len else crc
            total_len += length
        k >>= 1
        if k:
            crc = crc32_combine(crc, crc, length)
            length *= 2
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
    trailer = total_crc.to_bytes(4, "little") + (total_len & 0xFFFFFFFF).to_bytes(4, "little")
    return header + block * n + tail + trailer, total_len


def arg(query, name, default, convert=str):
    values = query.get(name)
    return convert(values[0]) if values else default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault/1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        route = getattr(self, "route_" + url.path.strip("/").replace("-", "_"), None)
        if route is None:
            return self.reply(404, "no route %s\n" % url.path)
        try:
            route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up: that is the point

    do_HEAD = do_POST = do_GET

    def route_ok(self):
        self.reply(200, "ok\n")

    def route_endless(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"e" * 65536
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        while True:
            self.wfile.write(frame)

    def route_gzip_bomb(self):
        layers = arg(self.query, "layers", 1, int)
        te = arg(self.query, "te", 0, int)
        body = self.server.bomb2 if layers == 2 else self.server.bomb1
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("X-Wire-Length", str(len(body)))
        self.send_header("X-Decoded-Length", str(self.server.bomb_decoded))
        if te:
            self.send_header("Transfer-Encoding", "gzip, chunked")
            self.end_headers()
            step = 65536
            for i in range(0, len(body), step):
                piece = body[i:i + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Encoding", "gzip, gzip" if layers == 2 else "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def route_headers(self):
        n = arg(self.query, "n", 100000, int)
        same = arg(self.query, "same", 0, int)
        lines = [b"HTTP/1.1 200 OK\r\n", b"Content-Type: text/plain\r\n", b"Content-Length: 3\r\n"]
        if same:
            lines += [b"X-Flood: v\r\n"] * n
        else:
            lines += [b"X-Flood-%d: v\r\n" % i for i in range(n)]
        self.wfile.write(b"".join(lines) + b"\r\nok\n")
        self.wfile.flush()
        self.close_connection = True

    def route_drip_headers(self):
        every = arg(self.query, "every", 3.0, float)
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.wfile.flush()
        for byte in b"Content-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n":
            time.sleep(every)
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
        self.close_connection = True

    def route_drip_body(self):
        every = arg(self.query, "every", 3.0, float)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.flush()
        for _ in range(1000000):
            self.wfile.write(b"d")
            self.wfile.flush()
            time.sleep(every)

    def route_redirect(self):
        self.reply(302, "elsewhere\n", [("Location", arg(self.query, "to", "/ok"))])

    def route_redirect_loop(self):
        self.reply(302, "again\n", [("Location", "/redirect-loop")])


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--bomb-mib", type=int, default=4096)
    a = p.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.bomb1, srv.bomb_decoded = gzip_bomb(a.bomb_mib)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    srv.bomb2 = c.compress(srv.bomb1) + c.flush()
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(a.port_file + ".tmp", a.port_file)
    print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
