#!/usr/bin/env python3
"""CHATHISTORY latency on a large store, through the server.

Against a running bavard (IRC dialect) whose `history.max_per_target` is at
least --messages, with flood control off for loopback (bench/bavard.toml plus
`[history] max_per_target = 1000000`): a writer fills #history with --messages
messages of --size bytes (pipelined, then confirmed with a PING), then a reader
with draft/chathistory sends --reads requests one at a time, alternating
`CHATHISTORY LATEST #history * 100` and `CHATHISTORY BEFORE #history
timestamp=T 100` at a random time T of the fill, and prints the p50, p99 and
worst of the round trips (request written to the batch's end read).

    bench/history_reads.py --irc 127.0.0.1:6672 --messages 1000000 --reads 2000

Exits non-zero when an answer is not 100 messages.
"""

import argparse
import datetime
import random
import socket
import sys
import time


class Conn:
    def __init__(self, addr, nick, caps=()):
        self.sock = socket.create_connection(addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        if caps:
            self.send("CAP LS 302")
            self.send("CAP REQ :" + " ".join(caps))
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        if caps:
            self.send("CAP END")
        self.until(lambda l: " 376 " in l or " 422 " in l)

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.decode("utf-8", "replace").rstrip("\r")
        if line.startswith("PING"):
            self.send("PONG" + line[4:])
        return line

    def until(self, pred):
        while True:
            line = self.line()
            if pred(line):
                return line


def stamp(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--irc", default="127.0.0.1:6672")
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--reads", type=int, default=2000)
    p.add_argument("--channel", default="#history")
    a = p.parse_args()
    host, port = a.irc.rsplit(":", 1)
    addr = (host.strip("[]"), int(port))

    w = Conn(addr, "hwriter")
    w.send(f"JOIN {a.channel}")
    w.until(lambda l: " 366 " in l)
    text = "x" * a.size
    start_ms = time.time() * 1000
    t0 = time.monotonic()
    batch = []
    for i in range(a.messages):
        batch.append(f"PRIVMSG {a.channel} :{i} {text}\r\n".encode())
        if len(batch) == 1000:
            w.sock.sendall(b"".join(batch))
            batch = []
    if batch:
        w.sock.sendall(b"".join(batch))
    w.send("PING :filled")
    w.until(lambda l: "PONG" in l and "filled" in l)
    end_ms = time.time() * 1000
    took = time.monotonic() - t0
    print(f"filled {a.messages} messages in {took:.1f} s ({a.messages / took:,.0f}/s)")

    r = Conn(addr, "hreader", ("draft/chathistory", "batch", "server-time", "message-tags"))
    r.send(f"JOIN {a.channel}")
    r.until(lambda l: " 366 " in l)
    rng = random.Random(1)
    lat = []
    for k in range(a.reads):
        if k % 2 == 0:
            req = f"CHATHISTORY LATEST {a.channel} * 100"
        else:
            t = rng.uniform(start_ms + 0.02 * (end_ms - start_ms), end_ms)
            req = f"CHATHISTORY BEFORE {a.channel} timestamp={stamp(t)} 100"
        t1 = time.perf_counter()
        r.send(req)
        n = 0
        r.until(lambda l: " BATCH +" in l)
        while True:
            line = r.line()
            if " BATCH -" in line:
                break
            if " PRIVMSG " in line:
                n += 1
        lat.append(time.perf_counter() - t1)
        if n != 100:
            print(f"{req}: {n} messages, not 100", file=sys.stderr)
            return 1
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(len(lat) * f))] * 1000
    print(f"CHATHISTORY LATEST/BEFORE 100 on {a.messages} messages: "
          f"p50 {q(0.50):.2f} ms, p99 {q(0.99):.2f} ms, max {lat[-1] * 1000:.2f} ms ({a.reads} reads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
