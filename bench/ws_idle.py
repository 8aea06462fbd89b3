#!/usr/bin/env python3
"""Memory per idle WebSocket connection: opens N IRC-over-WebSocket
connections to a running bavard, registers each, holds them, and reports
the server's RSS growth divided by N (docs/web.md).

    bench/ws_idle.py --target 127.0.0.1:8080 --pid PID --conns 5000 [--hold 3]

Needs the Python `websockets` package. The server should be a release build
(as for `bavard bench idle`), with admission limits that let N connections
in from loopback (loopback is exempt from the per-address limits by default).
"""

import argparse
import asyncio
import resource
import time

import websockets


def rss(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


async def client(url, i, sem, ready, hold, counts):
    async with sem:  # at most --concurrency handshakes under way
        ws = await websockets.connect(url, subprotocols=["text.ircv3.net"],
                                      ping_interval=None, max_queue=4)
        await ws.send(f"NICK i{i}")
        await ws.send(f"USER i{i} 0 * :idle {i}")
        async for msg in ws:
            if " 376 " in msg or " 422 " in msg:
                break
    counts[0] += 1
    if counts[0] == counts[1]:
        ready.set()
    await hold.wait()
    await ws.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="127.0.0.1:8080")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--conns", type=int, default=5000)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=200)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = f"ws://{a.target}/"
    before = rss(a.pid)
    anon_before = rss(a.pid, "RssAnon")
    ready, hold = asyncio.Event(), asyncio.Event()
    counts = [0, a.conns]
    sem = asyncio.Semaphore(a.concurrency)

    t0 = time.time()
    tasks = [asyncio.create_task(client(url, i, sem, ready, hold, counts))
             for i in range(a.conns)]
    await asyncio.wait_for(ready.wait(), timeout=600)
    took = time.time() - t0
    await asyncio.sleep(a.hold)
    after = rss(a.pid)
    anon_after = rss(a.pid, "RssAnon")
    hold.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    n = a.conns
    print(f"websocket idle: {n} registered in {took:.1f} s; server RSS "
          f"{before / 1e6:.1f} -> {after / 1e6:.1f} MB: {(after - before) / n:.0f} B/conn "
          f"(anonymous {(anon_after - anon_before) / n:.0f} B/conn)")


if __name__ == "__main__":
    asyncio.run(main())
