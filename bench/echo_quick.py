#!/usr/bin/env python3
"""Quick sanity load for `bavard echo` (not the real load tool).

Opens N connections, holds them all open at once, then has each do R round
trips of a small unique payload; reports connect time, round-trip throughput
and latency percentiles. Failures are counted, not fatal, so it also works for
probing what happens past the server's fd limit.

    python3 bench/echo_quick.py --addr 127.0.0.1:7777 --conns 10000 --rounds 10
"""

import argparse
import asyncio
import time


async def client(i, host, port, rounds, opened, go, lat, errors):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        errors.append(f"connect: {e}")
        opened.release()
        return
    opened.release()
    await go.wait()
    try:
        for r in range(rounds):
            payload = f"{i}:{r}:".encode() + bytes([i % 256, 0xFF, 0x00]) + b"\n"
            t0 = time.perf_counter()
            writer.write(payload)
            back = await reader.readexactly(len(payload))
            lat.append(time.perf_counter() - t0)
            if back != payload:
                errors.append(f"client {i}: wrong bytes")
                break
        writer.write_eof()
        if await reader.read() != b"":
            errors.append(f"client {i}: data after EOF")
    except (OSError, asyncio.IncompleteReadError) as e:
        errors.append(f"client {i}: {e!r}")
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:7777")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=10)
    a = ap.parse_args()
    host, _, port = a.addr.rpartition(":")
    host = host.strip("[]")

    opened = asyncio.Semaphore(0)
    go = asyncio.Event()
    lat, errors = [], []
    t0 = time.perf_counter()
    tasks = [
        asyncio.create_task(client(i, host, int(port), a.rounds, opened, go, lat, errors))
        for i in range(a.conns)
    ]
    for _ in range(a.conns):
        await opened.acquire()
    t1 = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    t2 = time.perf_counter()

    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 if lat else float("nan")
    print(f"conns={a.conns} connect_all={t1 - t0:.2f}s")
    print(f"round_trips={len(lat)} in {t2 - t1:.2f}s = {len(lat) / max(t2 - t1, 1e-9):.0f}/s")
    print(f"latency ms p50={pct(0.5):.2f} p99={pct(0.99):.2f} max={pct(1.0):.2f}")
    print(f"errors={len(errors)}" + (f" first: {errors[0]}" if errors else ""))


if __name__ == "__main__":
    asyncio.run(main())
