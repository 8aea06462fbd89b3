#!/usr/bin/env python3
"""Drives a running bavard with the `irc` library from PyPI (jaraco's
irc.client) and with a plain-socket `line` user, and checks that each side
sees what the other does.

It starts nothing itself:

    python3 tests/clients/python_irc_client.py --irc-port 6667 --line-port 7777

Two IRC connections (alice, bob) and one line user (linus) meet in #lobby,
then in a channel that alice creates (and so operates). Every expected event
is awaited with a timeout. Exit 0 on success; on failure, exit 1 with a
message that names the step and the last lines seen.
"""

import argparse
import socket
import sys
import time

try:
    import irc.client
    irc.client.Reactor  # irc >= 15; Debian 12's python3-irc (8.5.3) lacks it
except (ImportError, AttributeError):
    # The Rust test checks this itself, but be clear anyway.
    print("SKIP: the python 'irc' module (>= 15) is not installed "
          "(python3 -m pip install -r tests/clients/requirements.txt)",
          file=sys.stderr)
    sys.exit(77)

TIMEOUT = 5.0  # seconds for any single expected event
CHAN = "#lobby"
OPS = "#pyirc"  # a fresh channel: its first joiner (alice) is its operator


class Failure(Exception):
    pass


class LineUser:
    """A netcat-style `line` dialect user over a plain socket."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setblocking(False)
        self.buf = b""
        self.lines = []  # every line received, for error messages
        self.pending = []  # received and not yet consumed by expect()
        self.nick = None

    def send(self, text):
        self.sock.setblocking(True)
        self.sock.sendall(text.encode() + b"\n")
        self.sock.setblocking(False)

    def poll(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.buf += chunk
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                line = raw.decode("utf-8", "replace")
                self.lines.append(line)
                self.pending.append(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Harness:
    def __init__(self, host, irc_port, line_port, verbose):
        self.host = host
        self.irc_port = irc_port
        self.line_port = line_port
        self.verbose = verbose
        self.reactor = irc.client.Reactor()
        self.reactor.add_global_handler("all_events", self.on_event, -10)
        self.events = {}  # connection name -> list of pending events
        self.history = {}  # connection name -> every event, for messages
        self.names = {}  # ServerConnection -> name
        self.line = None
        self.step = "start"

    # --- IRC side -------------------------------------------------------

    def on_event(self, conn, ev):
        name = self.names.get(conn, "?")
        src = ev.source.nick if ev.source and "!" in str(ev.source) else str(ev.source)
        rec = (ev.type, src, ev.target, list(ev.arguments))
        if self.verbose:
            print(f"  irc {name}: {rec}", file=sys.stderr)
        if ev.type != "all_raw_messages":
            self.events.setdefault(name, []).append(rec)
        self.history.setdefault(name, []).append(rec)

    def connect(self, name, nick):
        conn = self.reactor.server()
        self.names[conn] = name
        conn.connect(self.host, self.irc_port, nick, username=nick.lower(),
                     ircname=f"{nick} (python irc)")
        self.expect_irc(name, lambda e: e[0] == "welcome", "001 welcome")
        # The end of the MOTD (or 422) closes registration for most clients.
        self.expect_irc(name, lambda e: e[0] in ("endofmotd", "nomotd"),
                        "end of MOTD (376) or no MOTD (422)")
        return conn

    def pump(self, t=0.05):
        self.reactor.process_once(t)
        if self.line:
            self.line.poll()

    def expect_irc(self, name, pred, what):
        deadline = time.monotonic() + TIMEOUT
        while True:
            pend = self.events.setdefault(name, [])
            for i, e in enumerate(pend):
                if pred(e):
                    del pend[: i + 1]
                    return e
            if time.monotonic() > deadline:
                seen = "\n    ".join(map(repr, self.history.get(name, [])[-15:]))
                raise Failure(f"[{self.step}] {name} did not get {what} within "
                              f"{TIMEOUT}s; last events:\n    {seen}")
            self.pump()

    def expect_line(self, exact=None, prefix=None, what=None):
        deadline = time.monotonic() + TIMEOUT
        while True:
            for i, l in enumerate(self.line.pending):
                if (exact is not None and l == exact) or (
                        prefix is not None and l.startswith(prefix)):
                    del self.line.pending[: i + 1]
                    return l
            if time.monotonic() > deadline:
                seen = "\n    ".join(map(repr, self.line.lines[-15:]))
                raise Failure(f"[{self.step}] line user did not get "
                              f"{what or exact or prefix!r} within {TIMEOUT}s; "
                              f"last lines:\n    {seen}")
            self.pump()

    def settle(self, seconds=0.3):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump()

    # --- scenario -------------------------------------------------------

    def run(self):
        h = self
        h.step = "line connect"
        h.line = LineUser(self.host, self.line_port)
        h.expect_line(exact="[server] Welcome to Chat Server !")
        greet = h.expect_line(prefix="[server] You are ")
        h.line.send("NICK linus")
        h.expect_line(exact="[server] You are now known as linus")

        h.step = "irc registration"
        alice = h.connect("alice", "alice")
        bob = h.connect("bob", "bob")

        h.step = "join #lobby"
        alice.join(CHAN)
        h.expect_irc("alice", lambda e: e[0] == "join" and e[1] == "alice"
                     and e[2].lower() == CHAN, "its own JOIN")
        nam = h.expect_irc("alice", lambda e: e[0] == "namreply", "353 names")
        names = nam[3][-1].split()
        if "linus" not in [n.lstrip("@+") for n in names] or "alice" not in [
                n.lstrip("@+") for n in names]:
            raise Failure(f"[{h.step}] 353 does not list linus and alice: {nam}")
        h.expect_irc("alice", lambda e: e[0] == "endofnames", "366 end of names")
        h.expect_line(exact="[server] alice joined #lobby")
        bob.join(CHAN)
        h.expect_irc("bob", lambda e: e[0] == "join" and e[1] == "bob", "its own JOIN")
        h.expect_irc("alice", lambda e: e[0] == "join" and e[1] == "bob", "bob's JOIN")
        h.expect_line(exact="[server] bob joined #lobby")

        h.step = "channel messages irc -> line"
        alice.privmsg(CHAN, "hello from irc")
        h.expect_line(exact="[alice] hello from irc")
        h.expect_irc("bob", lambda e: e[0] == "pubmsg" and e[1] == "alice"
                     and e[3] == ["hello from irc"], "alice's channel message")

        h.step = "channel messages line -> irc"
        h.line.send("MSG hello from  the line, spaces kept")
        for who in ("alice", "bob"):
            h.expect_irc(who, lambda e: e[0] == "pubmsg" and e[1] == "linus"
                         and e[2].lower() == CHAN
                         and e[3] == ["hello from  the line, spaces kept"],
                         "linus's channel message")

        h.step = "nick change"
        alice.nick("alice2")
        h.expect_irc("alice", lambda e: e[0] == "nick" and e[1] == "alice"
                     and e[2] == "alice2", "its own NICK")
        h.expect_irc("bob", lambda e: e[0] == "nick" and e[1] == "alice"
                     and e[2] == "alice2", "alice's NICK")
        h.expect_line(exact="[server] alice is now known as alice2")
        if alice.get_nickname() != "alice2":
            raise Failure(f"[{h.step}] the library thinks its nick is "
                          f"{alice.get_nickname()}")
        h.line.send("NICK linus2")
        h.expect_line(exact="[server] You are now known as linus2")
        for who in ("alice", "bob"):
            h.expect_irc(who, lambda e: e[0] == "nick" and e[1] == "linus"
                         and e[2] == "linus2", "linus's NICK")

        h.step = "topic"
        alice.topic(CHAN, "set by the python irc library")
        for who in ("alice", "bob"):
            h.expect_irc(who, lambda e: e[0] == "topic" and e[1] == "alice2"
                         and e[3] == ["set by the python irc library"],
                         "TOPIC")
        h.expect_line(exact="[server] alice2 changed the topic of #lobby to: "
                      "set by the python irc library")
        h.line.send("TOPIC and now by the line")
        h.expect_line(exact="[server] linus2 changed the topic of #lobby to: "
                      "and now by the line")
        h.expect_irc("bob", lambda e: e[0] == "topic" and e[1] == "linus2"
                     and e[3] == ["and now by the line"], "linus's TOPIC")
        bob.topic(CHAN)  # query
        h.expect_irc("bob", lambda e: e[0] == "currenttopic"
                     and e[3][-1] == "and now by the line", "332 topic reply")

        h.step = "operated channel: join"
        alice.join(OPS)
        h.expect_irc("alice", lambda e: e[0] == "namreply" and "@alice2"
                     in e[3][-1].split(), "353 with @alice2 (first joiner is op)")
        bob.join(OPS)
        h.expect_irc("alice", lambda e: e[0] == "join" and e[1] == "bob"
                     and e[2].lower() == OPS, "bob's JOIN")
        h.line.send(f"JOIN {OPS}")
        h.expect_line(exact=f"[server] You joined {OPS}")
        h.expect_line(prefix=f"[server] Members of {OPS}: ")
        for who in ("alice", "bob"):
            # linus leaves #lobby for #pyirc: a PART from #lobby first.
            h.expect_irc(who, lambda e: e[0] == "part" and e[1] == "linus2"
                         and e[2].lower() == CHAN, "linus's PART from #lobby")
            h.expect_irc(who, lambda e: e[0] == "join" and e[1] == "linus2"
                         and e[2].lower() == OPS, "linus's JOIN")

        h.step = "mode +m"
        alice.mode(OPS, "+m")
        for who in ("alice", "bob"):
            h.expect_irc(who, lambda e: e[0] == "mode" and e[1] == "alice2"
                         and e[3][:1] == ["+m"], "MODE +m")
        h.expect_line(exact=f"[server] alice2 sets mode +m on {OPS}")
        h.line.send("MSG am I muted?")
        h.expect_line(exact=f"[server] You cannot send to {OPS}")
        bob.privmsg(OPS, "am I muted?")
        h.expect_irc("bob", lambda e: e[0] == "cannotsendtochan", "404")

        h.step = "mode +v"
        alice.mode(OPS, "+v bob")
        for who in ("alice", "bob"):
            h.expect_irc(who, lambda e: e[0] == "mode" and e[3] == ["+v", "bob"],
                         "MODE +v bob")
        h.expect_line(exact=f"[server] alice2 sets mode +v bob on {OPS}")
        bob.privmsg(OPS, "voiced now")
        h.expect_line(exact="[bob] voiced now")
        h.expect_irc("alice", lambda e: e[0] == "pubmsg" and e[1] == "bob"
                     and e[3] == ["voiced now"], "bob's voiced message")

        h.step = "kick"
        alice.kick(OPS, "linus2", "testing kicks")
        for who in ("alice", "bob"):
            h.expect_irc(who, lambda e: e[0] == "kick" and e[1] == "alice2"
                         and e[3] == ["linus2", "testing kicks"], "KICK")
        h.expect_line(exact=f"[server] linus2 was kicked from {OPS} by alice2 "
                      "(testing kicks)")
        h.line.send("MSG anyone?")
        h.expect_line(exact="[server] You are in no channel: JOIN one first")
        h.line.send("PART")  # back to #lobby
        h.expect_line(exact="[server] You joined #lobby")

        h.step = "private messages"
        alice.privmsg("linus2", "psst, from irc")
        h.expect_line(exact="*alice2* psst, from irc")
        h.line.send("PM alice2 psst back, from the line")
        h.expect_irc("alice", lambda e: e[0] == "privmsg" and e[1] == "linus2"
                     and e[2] == "alice2"
                     and e[3] == ["psst back, from the line"], "linus's PM")
        bob.privmsg("alice2", "irc to irc")
        h.expect_irc("alice", lambda e: e[0] == "privmsg" and e[1] == "bob"
                     and e[3] == ["irc to irc"], "bob's PM")
        alice.notice("linus2", "a notice")
        h.expect_line(exact="*alice2* a notice")

        h.step = "quit"
        bob.quit("bob says bye")
        h.expect_irc("alice", lambda e: e[0] == "quit" and e[1] == "bob"
                     and e[3] == ["Quit: bob says bye"]
                     or e[0] == "quit" and e[1] == "bob"
                     and e[3] == ["bob says bye"], "bob's QUIT")
        h.expect_line(exact="[server] bob is disconnected")
        h.expect_irc("bob", lambda e: e[0] == "disconnect", "its disconnect")
        alice.quit("done")
        h.expect_line(exact="[server] alice2 is disconnected")
        h.expect_irc("alice", lambda e: e[0] == "disconnect", "its disconnect")
        h.line.send("WHO")
        h.expect_line(exact="[server] linus2")
        h.line.send("QUIT")

        h.step = "unexpected errors"
        allowed = {"cannotsendtochan"}
        for name, hist in self.history.items():
            for e in hist:
                if (e[0].startswith("err") or e[0] == "error"
                        or (e[0].isdigit() and e[0][0] in "45")
                        or (e[0].startswith("no") and e[0] != "nomotd")
                        or e[0] in ("cannotsendtochan", "chanoprivsneeded",
                                    "unknowncommand", "needmoreparams")):
                    if e[0] in allowed:
                        continue
                    if e[0] == "error" and name in ("alice", "bob"):
                        # ERROR after QUIT closes the link: normal.
                        continue
                    raise Failure(f"{name} got an unexpected error reply: {e}")
        return greet


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--irc-port", type=int, required=True)
    ap.add_argument("--line-port", type=int, required=True)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    h = Harness(a.host, a.irc_port, a.line_port, a.verbose)
    started = time.monotonic()
    try:
        h.run()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except (OSError, irc.client.ServerConnectionError) as e:
        print(f"FAIL: [{h.step}] connection error: {e!r}", file=sys.stderr)
        return 1
    finally:
        if h.line:
            h.line.close()
        h.reactor.disconnect_all()
    print(f"OK: python irc {irc_version()} talked to bavard "
          f"({time.monotonic() - started:.1f}s)")
    return 0


def irc_version():
    try:
        from importlib.metadata import version
        return version("irc")
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
