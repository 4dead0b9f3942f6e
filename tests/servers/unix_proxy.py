#!/usr/bin/env python3
"""A byte-for-byte Unix-socket proxy, stdlib only: listens on --listen PATH
and forwards every connection to --upstream PATH (the Docker daemon's
socket, for the fault tests), so that a test can make "the daemon" go away
by killing this process (by its pid) without touching the real daemon.

    unix_proxy.py --listen /tmp/x/proxy.sock --upstream /var/run/docker.sock \
                  [--ready-file /tmp/x/ready] [--log /tmp/x/conns]

One thread pair per connection; nothing is parsed or buffered beyond one
read. --ready-file is written once the socket listens; --log gets one line
per accepted connection ("conn N"), so a test can tell the proxy was used.
The socket file is left behind when the process is killed: a client then
gets "connection refused", as from a stopped daemon.
"""
import argparse
import os
import socket
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def serve(client, upstream_path):
    try:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(upstream_path)
    except OSError:
        client.close()
        return
    a = threading.Thread(target=pump, args=(client, upstream), daemon=True)
    b = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    client.close()
    upstream.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", required=True)
    p.add_argument("--upstream", default="/var/run/docker.sock")
    p.add_argument("--ready-file")
    p.add_argument("--log")
    a = p.parse_args()
    if os.path.exists(a.listen):
        os.unlink(a.listen)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(a.listen)
    srv.listen(64)
    log = open(a.log, "a", buffering=1) if a.log else None
    if a.ready_file:
        with open(a.ready_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(a.ready_file + ".tmp", a.ready_file)
    n = 0
    while True:
        client, _ = srv.accept()
        n += 1
        if log:
            log.write("conn %d\n" % n)
        threading.Thread(target=serve, args=(client, a.upstream), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
