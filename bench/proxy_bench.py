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

With the bulk figures, the CPU seconds each process spent on them (the
sender is this process, the sink one of its own): on a machine
with fewer cores than busy processes, they say who waited for whom.
PIN=1 runs the bulk measurement again with the sender and the sink
sharing core 0 and the proxy alone on core 1, direct and proxied alike:
what the proxy costs when it does not take the others' CPU.
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


def sink_server(port, ready):
    """The bulk upstream, in a process of its own: counts what it reads
    into one buffer, says how much at end of file. Blocking and without
    allocation, so that it costs little CPU: an asyncio sink spent up to
    6 CPU seconds per GiB, varying from run to run, and so measured
    Python rather than the proxy."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    ready.set()
    buf = bytearray(1 << 20)
    while True:
        c, _ = ls.accept()
        with c:
            n = 0
            while k := c.recv_into(buf):
                n += k
            c.sendall(str(n).encode())


def servers(echo_port, ready):
    """The echo upstream, in a process of its own."""
    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        writer.close()

    async def main():
        a = await asyncio.start_server(echo, "127.0.0.1", echo_port, backlog=4096)
        ready.set()
        await a.serve_forever()

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


def cpu_s(pid):
    """User plus system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s():
    """CPU seconds the whole machine spent not idle (every process, the
    kernel's interrupts, and whatever else shares it), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def bulk(port, mib, pids):
    """MiB/s, seconds, the CPU seconds each of pids spent meanwhile and
    the machine's busy seconds."""
    chunk = b"\0" * (1 << 20)
    with connect(port) as s:
        c0 = [cpu_s(p) for p in pids]
        m0 = machine_busy_s()
        t0 = time.perf_counter()
        for _ in range(mib):
            s.sendall(chunk)
        s.shutdown(socket.SHUT_WR)
        n = int(s.recv(64) or b"0")
        took = time.perf_counter() - t0
        cpu = [cpu_s(p) - c for p, c in zip(pids, c0)]
        machine = machine_busy_s() - m0
    assert n == mib << 20, f"sink got {n} bytes"
    return mib / took, took, cpu, machine


def bulk_report(label, sink_port, psink, pids):
    """Direct and proxied bulk, with who used how much CPU."""
    bd, td, (sd, kd, _), md = bulk(sink_port, BULK_MIB, pids)
    bp, tp, (sp, kp, pp), mp = bulk(psink, BULK_MIB, pids)
    print(f"{label:8s} direct {bd:,.0f} MiB/s | proxy {bp:,.0f} MiB/s | ratio {bp / bd:.2f}x   target > 0.8x: "
          f"{'PASS' if bp / bd > 0.8 else 'MISS'}")
    print(f"         CPU s direct: sender {sd:.2f} sink {kd:.2f} in {td:.2f} s, machine {md / td:.2f} cores busy | "
          f"proxied: sender {sp:.2f} sink {kp:.2f} proxy {pp:.2f} in {tp:.2f} s, machine {mp / tp:.2f} cores busy")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    echo_port, sink_port, control = free_port(), free_port(), free_port()
    pecho, psink = free_port(), free_port()
    ready, sink_ready = multiprocessing.Event(), multiprocessing.Event()
    srv = multiprocessing.Process(target=servers, args=(echo_port, ready), daemon=True)
    srv.start()
    sink = multiprocessing.Process(target=sink_server, args=(sink_port, sink_ready), daemon=True)
    sink.start()
    ready.wait(10)
    sink_ready.wait(10)
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
        pids = [os.getpid(), sink.pid, proxy.pid]
        bulk_report("bulk", sink_port, psink, pids)
        if os.environ.get("PIN") and os.cpu_count() >= 2:
            mask = os.sched_getaffinity(0)
            for pid in pids[:2]:
                os.sched_setaffinity(pid, {0})
            os.sched_setaffinity(proxy.pid, {1})
            bulk_report("pinned", sink_port, psink, pids)
            for pid in pids:
                os.sched_setaffinity(pid, mask)
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
        sink.terminate()


if __name__ == "__main__":
    main()
