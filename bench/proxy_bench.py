"""halo proxy against a direct connection, on 127.0.0.1, in the same run
(bench/proxy.sh; bench/README.md, "Fault proxy"). Prints figures, ratios
and PASS/MISS against the issue's targets; exits 0 unless something failed
to run.

  1. added latency: one keep-alive connection, ROUNDS ping-pongs of 64
     bytes to an echo server, direct and through a link with no fault;
     p50 and p99 of each, and the difference (us).
  2. throughput: BULK_MIB MiB streamed to a sink over one connection,
     direct and through the proxy (MiB/s), and ROUNDS keep-alive
     round trips per second on 4 connections at once; proxy/direct.
  3. memory: the proxy's RSS before and after IDLE idle connections
     through one link, per connection (KiB).
"""
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HALO = os.environ.get("HALO", "build/halo")
ROUNDS = int(os.environ.get("ROUNDS", "20000"))
BULK_MIB = int(os.environ.get("BULK_MIB", "1024"))
IDLE = int(os.environ.get("IDLE", "2000"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def servers(echo_port, sink_port, ready):
    """The upstreams, in a process of their own: an echo and a sink."""
    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        writer.close()

    async def sink(reader, writer):
        sock = writer.get_extra_info("socket")
        n = 0
        try:
            while data := await reader.read(1 << 20):
                n += len(data)
        except OSError:
            pass
        writer.write(str(n).encode())
        await writer.drain()
        writer.close()

    async def main():
        a = await asyncio.start_server(echo, "127.0.0.1", echo_port, backlog=4096)
        b = await asyncio.start_server(sink, "127.0.0.1", sink_port, backlog=64)
        ready.set()
        await asyncio.gather(a.serve_forever(), b.serve_forever())

    asyncio.run(main())


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def pingpong(port, rounds):
    msg = b"x" * 64
    out = []
    with connect(port) as s:
        for _ in range(200):  # warm-up
            s.sendall(msg)
            s.recv(64)
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            s.sendall(msg)
            got = 0
            while got < 64:
                got += len(s.recv(64 - got))
            out.append((time.perf_counter_ns() - t0) / 1000)
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99)]


def rate(port, conns=4, seconds=3.0):
    """Round trips per second on `conns` keep-alive connections at once
    (one process each: the client, not the GIL, is what we measure)."""
    def worker(q):
        msg = b"x" * 64
        n = 0
        with connect(port) as s:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                s.sendall(msg)
                got = 0
                while got < 64:
                    got += len(s.recv(64 - got))
                n += 1
        q.put(n)
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=worker, args=(q,)) for _ in range(conns)]
    for p in ps:
        p.start()
    total = sum(q.get() for _ in ps)
    for p in ps:
        p.join()
    return total / seconds


def bulk(port, mib):
    chunk = b"\0" * (1 << 20)
    with connect(port) as s:
        t0 = time.perf_counter()
        for _ in range(mib):
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        n = int(s.recv(64) or b"0")
        took = time.perf_counter() - t0
    assert n == mib << 20, f"sink got {n} bytes"
    return mib / took


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    echo_port, sink_port, control = free_port(), free_port(), free_port()
    pecho, psink = free_port(), free_port()
    ready = multiprocessing.Event()
    srv = multiprocessing.Process(target=servers, args=(echo_port, sink_port, ready), daemon=True)
    srv.start()
    ready.wait(10)
    proxy = subprocess.Popen([HALO, "proxy", "--control", f"127.0.0.1:{control}",
                              "--link", f"echo=127.0.0.1:{pecho},127.0.0.1:{echo_port}",
                              "--link", f"sink=127.0.0.1:{psink},127.0.0.1:{sink_port}"],
                             stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{control}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        print(f"halo proxy bench: {ROUNDS} ping-pongs, {BULK_MIB} MiB bulk, {IDLE} idle connections "
              f"({os.cpu_count()} cores)")
        d50, d99 = pingpong(echo_port, ROUNDS)
        p50, p99 = pingpong(pecho, ROUNDS)
        add50, add99 = p50 - d50, p99 - d99
        print(f"latency  direct p50 {d50:.1f} us p99 {d99:.1f} us | proxy p50 {p50:.1f} us p99 {p99:.1f} us")
        print(f"added    p50 {add50:.1f} us  p99 {add99:.1f} us   target p50 < 50 us: "
              f"{'PASS' if add50 < 50 else 'MISS'}")
        rd = rate(echo_port)
        rp = rate(pecho)
        print(f"rate     direct {rd:,.0f} round trips/s | proxy {rp:,.0f}/s | ratio {rp / rd:.2f}x (4 connections)")
        bd = bulk(sink_port, BULK_MIB)
        bp = bulk(psink, BULK_MIB)
        print(f"bulk     direct {bd:,.0f} MiB/s | proxy {bp:,.0f} MiB/s | ratio {bp / bd:.2f}x   target > 0.8x: "
              f"{'PASS' if bp / bd > 0.8 else 'MISS'}")
        before = rss_kib(proxy.pid)
        socks = [connect(pecho) for _ in range(IDLE)]
        for s in socks[:: max(1, IDLE // 50)]:  # every connection is up and through
            s.sendall(b"x")
            s.recv(1)
        time.sleep(0.5)
        after = rss_kib(proxy.pid)
        info = json.load(urllib.request.urlopen(f"http://127.0.0.1:{control}/links/echo", timeout=5))
        active = info["counters"]["active"]
        print(f"memory   RSS {before} KiB -> {after} KiB with {active} idle connections: "
              f"{(after - before) / max(active, 1):.2f} KiB per connection")
        for s in socks:
            s.close()
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(10)
        srv.terminate()


if __name__ == "__main__":
    main()
