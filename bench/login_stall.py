#!/usr/bin/env python3
"""Does a login stall other connections? The latency of a chatting pair,
without logins and while waves of clients log in with SASL PLAIN at once
(docs/accounts.md, "The cost of a password").

    bench/login_stall.py --target 127.0.0.1:6667 [--logins 50] [--rate 200]
                         [--phase 10] [--rounds 2] [--register]

Two IRC clients, `pair_a` and `pair_b`, share #stall; `pair_a` sends
`--rate` messages a second, each carrying its send time, and `pair_b`
records when each arrives. The run alternates phases of `--phase` seconds:
quiet (only the pair), then logins (waves of `--logins` clients connecting
at once, each logging in with SASL PLAIN to an account `stall<i>` with
password `stall-pw-<i>`, then quitting; the next wave starts when the last
one is done), `--rounds` times. The login waves run in a process of their
own, so the pair's timings do not wait on the login clients' Python.

`--register` first registers the accounts over the wire (REGISTER; an
existing account is fine). Every wait is bounded; a message lost or a login
refused fails the run.
"""

import argparse
import asyncio
import base64
import multiprocessing
import statistics
import sys
import time

WAIT = 10.0


async def connect(host, port):
    return await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)


async def until(reader, *needles):
    """Reads lines until one contains a needle; returns that line."""
    while True:
        raw = await asyncio.wait_for(reader.readline(), WAIT)
        if not raw:
            raise RuntimeError(f"connection closed waiting for {needles}")
        line = raw.decode(errors="replace")
        if line.startswith("PING"):
            continue
        if any(n in line for n in needles):
            return line


async def register_account(host, port, i):
    r, w = await connect(host, port)
    w.write(f"NICK stall{i}\r\nUSER s 0 * :s\r\n".encode())
    await until(r, " 001 ")
    w.write(f"REGISTER * * stall-pw-{i}\r\n".encode())
    line = await until(r, "REGISTER SUCCESS", "FAIL REGISTER", "ACCOUNT_EXISTS")
    if "FAIL" in line and "ACCOUNT_EXISTS" not in line:
        raise RuntimeError(line.strip())
    w.write(b"QUIT\r\n")
    w.close()


async def login(host, port, i):
    """One SASL PLAIN login, from connecting to 903; its duration."""
    start = time.monotonic()
    r, w = await connect(host, port)
    w.write(b"CAP LS 302\r\nCAP REQ :sasl\r\n")
    await until(r, " ACK ")
    w.write(b"AUTHENTICATE PLAIN\r\n")
    await until(r, "AUTHENTICATE +")
    blob = base64.b64encode(f"\0stall{i}\0stall-pw-{i}".encode()).decode()
    w.write(f"AUTHENTICATE {blob}\r\n".encode())
    line = await until(r, " 903 ", " 904 ", " 902 ")
    if " 903 " not in line:
        raise RuntimeError(f"login {i} refused: {line.strip()}")
    took = time.monotonic() - start
    w.write(b"QUIT\r\n")
    await w.drain()
    w.close()
    return took


def login_waves(host, port, n, seconds, out):
    """Runs waves of `n` concurrent logins for `seconds`; puts (waves,
    logins, mean wave seconds, slowest login) on `out`."""

    async def run():
        end = time.monotonic() + seconds
        waves, logins, spans, slowest = 0, 0, [], 0.0
        while time.monotonic() < end:
            t0 = time.monotonic()
            took = await asyncio.gather(*(login(host, port, i) for i in range(n)))
            spans.append(time.monotonic() - t0)
            slowest = max(slowest, max(took))
            waves += 1
            logins += n
        return waves, logins, statistics.mean(spans), slowest

    out.put(asyncio.run(run()))


class Pair:
    """Two clients: `a` sends stamped messages to #stall, `b` times them."""

    def __init__(self, host, port, rate):
        self.host, self.port, self.rate = host, port, rate
        self.sent = 0
        self.lat = []  # (phase, seconds)
        self.phase = "warmup"

    async def open(self):
        self.ra, self.wa = await connect(self.host, self.port)
        self.rb, self.wb = await connect(self.host, self.port)
        for nick, r, w in (("pair_a", self.ra, self.wa), ("pair_b", self.rb, self.wb)):
            w.write(f"NICK {nick}\r\nUSER p 0 * :p\r\nJOIN #stall\r\n".encode())
            await until(r, " 366 ")
        self.reader = asyncio.create_task(self.receive())
        self.drainer = asyncio.create_task(self.drain_a())

    async def drain_a(self):
        while await self.ra.readline():
            pass

    async def receive(self):
        while True:
            raw = await self.rb.readline()
            if not raw:
                return
            line = raw.decode(errors="replace")
            if "PRIVMSG #stall :" in line:
                phase, stamp = line.rsplit(":", 1)[1].split()
                self.lat.append((phase, time.monotonic_ns() - int(stamp)))

    async def send_for(self, phase, seconds):
        """Sends at `rate` for `seconds`, on a fixed schedule."""
        self.phase = phase
        interval = 1.0 / self.rate
        start = time.monotonic()
        k = 0
        while True:
            due = start + k * interval
            if due - start >= seconds:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.wa.write(f"PRIVMSG #stall :{phase} {time.monotonic_ns()}\r\n".encode())
            self.sent += 1
            k += 1


def summary(values_ns):
    ms = sorted(v / 1e6 for v in values_ns)
    q = lambda p: ms[min(len(ms) - 1, int(p * len(ms)))]
    return f"n={len(ms)} p50={q(0.50):.2f} ms p99={q(0.99):.2f} ms max={ms[-1]:.2f} ms"


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="127.0.0.1:6667")
    ap.add_argument("--logins", type=int, default=50)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--phase", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--register", action="store_true")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    port = int(port)

    if a.register:
        for i in range(a.logins):
            await register_account(host, port, i)
        print(f"registered stall0..stall{a.logins - 1}")

    pair = Pair(host, port, a.rate)
    await pair.open()
    await pair.send_for("warmup", 1.0)
    ctx = multiprocessing.get_context("spawn")
    waves = []
    for _ in range(a.rounds):
        await pair.send_for("quiet", a.phase)
        out = ctx.Queue()
        proc = ctx.Process(target=login_waves, args=(host, port, a.logins, a.phase, out))
        proc.start()
        # The pair keeps its schedule until the last wave has ended.
        sender = asyncio.create_task(pair.send_for("logins", 3600))
        result = await asyncio.get_running_loop().run_in_executor(None, out.get)
        sender.cancel()
        proc.join(WAIT)
        if proc.exitcode != 0:
            sys.exit("the login process failed")
        waves.append(result)
    await asyncio.sleep(1.0)
    pair.wa.write(b"QUIT\r\n")
    pair.wb.write(b"QUIT\r\n")
    got = len(pair.lat)
    if got != pair.sent:
        sys.exit(f"lost messages: sent {pair.sent}, received {got}")
    for phase in ("quiet", "logins"):
        print(f"{phase:7} {summary([ns for p, ns in pair.lat if p == phase])}")
    n_waves = sum(w[0] for w in waves)
    n_logins = sum(w[1] for w in waves)
    mean_wave = statistics.mean(w[2] for w in waves)
    slowest = max(w[3] for w in waves)
    print(f"logins: {n_logins} in {n_waves} waves of {a.logins}, "
          f"{mean_wave:.2f} s per wave, slowest login {slowest:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
