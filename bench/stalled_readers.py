#!/usr/bin/env python3
"""How long a reader takes to get a flood when members of its channel stop reading.

Against a running bavard (line dialect): one reader, N members that never read
(4 KiB receive buffers), and a sender that sends LINES lines of SIZE bytes to
#lobby as fast as it can (as an operator, exempt from flood control, when
--oper is given). Prints the time until the reader had every line, in order,
and how many of the stalled members the server disconnected.

    bench/stalled_readers.py --line 127.0.0.1:7777 --stalled 0,1,5 --oper NAME:PASSWORD

Exits non-zero if a line was lost or reordered, or a stalled member was left
connected.
"""

import argparse
import socket
import sys
import threading
import time

GREETING_END = ". Type HELP for the commands."


def connect(addr, rcvbuf=None):
    s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(addr)
    return s


class Lines:
    """Line reader over a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self, timeout):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace")

    def until(self, pred, timeout):
        while True:
            line = self.line(timeout)
            if pred(line):
                return line


def member(addr, rcvbuf=None):
    """A connected line user, past its greeting; returns (lines, nick)."""
    lines = Lines(connect(addr, rcvbuf))
    greet = lines.until(lambda l: l.endswith(GREETING_END), 10)
    nick = greet[len("[server] You are "):].split(",")[0]
    return lines, nick


def closed_by_server(sock, timeout):
    """Reads what the kernel still holds until EOF; False if none comes."""
    sock.settimeout(timeout)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if not sock.recv(1 << 16):
                return True
    except (socket.timeout, OSError):
        return isinstance(sys.exc_info()[1], ConnectionResetError)
    return False


def run(addr, stalled, count, size, oper):
    reader, _ = member(addr)
    quiet = [member(addr, rcvbuf=4096) for _ in range(stalled)]
    sender, _ = member(addr)
    if oper:
        sender.sock.sendall(f"OPER {oper[0]} {oper[1]}\n".encode())
        sender.until(lambda l: "operator" in l, 10)
    pad = "p" * max(0, size - 12)
    data = b"".join(f"MSG {i:07d} {pad}\n".encode() for i in range(count))
    t0 = time.monotonic()
    threading.Thread(target=sender.sock.sendall, args=(data,), daemon=True).start()
    expect = 0
    gone = set()
    while expect < count:
        try:
            line = reader.line(60)
        except EOFError:
            print(f"the reader was disconnected after {expect} lines", file=sys.stderr)
            return None
        if line.startswith("[server] ") and line.endswith(" is disconnected"):
            gone.add(line[len("[server] "):-len(" is disconnected")])
            continue
        if line.startswith("[server] "):
            continue
        want = f"{expect:07d} {pad}"
        if not line.endswith(want):
            print(f"line {expect}: got {line[:60]!r}", file=sys.stderr)
            return None
        expect += 1
    elapsed = time.monotonic() - t0
    dropped = sum(1 for lines, nick in quiet if nick in gone or closed_by_server(lines.sock, 15))
    for s in [reader.sock, sender.sock] + [q.sock for q, _ in quiet]:
        s.close()
    return elapsed, dropped


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--line", default="127.0.0.1:7777", help="line listener HOST:PORT")
    p.add_argument("--stalled", default="0,1,5", help="numbers of stalled members, comma-separated")
    p.add_argument("--lines", type=int, default=20000)
    p.add_argument("--size", type=int, default=1000, help="bytes per line")
    p.add_argument("--oper", help="NAME:PASSWORD of an operator (flood control exemption)")
    p.add_argument("--runs", type=int, default=1)
    a = p.parse_args()
    host, port = a.line.rsplit(":", 1)
    addr = (host.strip("[]"), int(port))
    oper = a.oper.split(":", 1) if a.oper else None
    ok = True
    print("stalled  lines  seconds  dropped")
    for n in (int(x) for x in a.stalled.split(",")):
        for _ in range(a.runs):
            r = run(addr, n, a.lines, a.size, oper)
            if r is None:
                ok = False
                print(f"{n:7d}  {a.lines:5d}  lost or reordered")
                continue
            elapsed, dropped = r
            print(f"{n:7d}  {a.lines:5d}  {elapsed:7.2f}  {dropped}/{n}", flush=True)
            ok &= dropped == n
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
