#!/usr/bin/env python3
"""A slow HTTP/1.1 endpoint for bench/http.sh: every request is answered
after --delay seconds, so a client's requests pile up in flight.

Python stdlib only (asyncio), bound to 127.0.0.1. It counts what it holds:
open connections and requests received but not yet answered, and on
SIGTERM/SIGINT writes the peaks and totals as one JSON object to --stats
(or stdout):

  {"requests": N, "peak_in_flight": N, "peak_connections": N,
   "connections": N, "delay": S}

    python3 bench/slow_server.py --delay 5 --port-file PORTFILE --stats STATS
"""
import argparse
import asyncio
import json
import signal
import sys

stats = {"requests": 0, "peak_in_flight": 0, "peak_connections": 0, "connections": 0}
in_flight = 0
open_conns = 0


async def handle(reader, writer, delay):
    global in_flight, open_conns
    open_conns += 1
    stats["connections"] += 1
    stats["peak_connections"] = max(stats["peak_connections"], open_conns)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if length:
                await reader.readexactly(length)
            in_flight += 1
            stats["peak_in_flight"] = max(stats["peak_in_flight"], in_flight)
            try:
                await asyncio.sleep(delay)
            finally:
                in_flight -= 1
            body = b"slow ok\n"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            stats["requests"] += 1
    except ConnectionError:
        pass
    finally:
        open_conns -= 1
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=5.0, help="seconds before each response")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--stats", help="write the JSON stats here at exit (default: stdout)")
    ap.add_argument("--backlog", type=int, default=4096)
    a = ap.parse_args()
    stats["delay"] = a.delay

    server = await asyncio.start_server(lambda r, w: handle(r, w, a.delay), "127.0.0.1", a.port,
                                        backlog=a.backlog)
    port = server.sockets[0].getsockname()[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        import os
        os.replace(a.port_file + ".tmp", a.port_file)  # appears whole

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    text = json.dumps(stats)
    if a.stats:
        with open(a.stats, "w") as f:
            f.write(text + "\n")
    else:
        print(text, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
