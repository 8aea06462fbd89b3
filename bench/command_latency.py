#!/usr/bin/env python3
"""Times IRC commands one at a time against one bavard node (of a cluster, or
alone): PING (answered locally), JOIN of a new channel and NICK (each through
the name registry and, clustered, the log). Prints p50 and p99 per command.

    python3 bench/command_latency.py --target 127.0.0.1:6662 [--rounds 50]
"""
import argparse
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="127.0.0.1:6667")
    ap.add_argument("--rounds", type=int, default=50)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    c = socket.create_connection((host, int(port)), timeout=30)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = c.makefile("rb")
    tag = "lat%d" % (time.time_ns() % 100000)
    c.sendall(b"NICK %s0\r\nUSER t 0 * :T\r\n" % tag.encode())
    while b" 376 " not in f.readline():
        pass

    def rt(cmd, want):
        t = time.perf_counter()
        c.sendall(cmd)
        while want not in f.readline():
            pass
        return (time.perf_counter() - t) * 1000

    for name, mk, want in [
        ("PING", lambda i: b"PING x\r\n", b"PONG"),
        ("JOIN", lambda i: b"JOIN #%s_%d\r\n" % (tag.encode(), i), b" 366 "),
        ("NICK", lambda i: b"NICK %s%d\r\n" % (tag.encode(), i + 1), b"NICK"),
    ]:
        xs = sorted(rt(mk(i), want) for i in range(a.rounds))
        p50, p99 = xs[len(xs) // 2], xs[min(len(xs) - 1, (len(xs) * 99) // 100)]
        print("%s p50 %.2f ms p99 %.2f ms (n=%d)" % (name, p50, p99, len(xs)))


if __name__ == "__main__":
    main()
