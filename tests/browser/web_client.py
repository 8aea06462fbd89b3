#!/usr/bin/env python3
"""Drives the built-in web client in headless Chromium over the DevTools
protocol, against a running bavard, with a line-dialect user beside it.

    web_client.py --http 127.0.0.1:8080 --line 127.0.0.1:7000 --screenshot out.png

The line user registers an account (`reader`) and says 60 numbered lines
in #lobby first. Then the page logs in to that account with SASL (nick
`webber`), joins #lobby (the form's default) and shows the latest 50 lines
of history; "Load older messages" brings the first ten (scroll-back through
CHATHISTORY, so the server must keep history). Messages go both ways; a
private message from the line user opens a conversation, which follows the
line user's NICK change. Last, a screenshot of #lobby. Exits non-zero with
the reason on failure. Needs `chromium` (or --chromium PATH) and the
`websockets` module.
"""

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

TIMEOUT = 20.0


class Cdp:
    """A DevTools protocol session over one WebSocket: commands by id,
    events ignored."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    async def call(self, method, **params):
        self.next_id += 1
        mine = self.next_id
        await self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def until(self, expr, what):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if await self.eval(expr):
                return
            await asyncio.sleep(0.1)
        log = await self.eval("document.body.innerText")
        raise RuntimeError(f"timed out waiting for {what}; the page shows:\n{log}")


class LineUser:
    """An nc-style user of the line dialect."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT)
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def until(self, want, exact=True):
        """Reads lines until one is `want` (or contains it)."""
        seen = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode(errors="replace").rstrip("\r")
                seen.append(text)
                if text == want or (not exact and want in text):
                    return
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        raise RuntimeError(f"line user never got {want!r}; got {seen!r}")


def start_chromium(binary, profile):
    proc = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--window-size=1100,700", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        m = re.search(r"DevTools listening on ws://([^/]+)/", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError("chromium did not start its DevTools endpoint")


def page_target(devtools):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://{devtools}/json/list", timeout=TIMEOUT) as r:
            for t in json.load(r):
                if t.get("type") == "page":
                    return t["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise RuntimeError("chromium has no page")


async def run(args, devtools):
    async with websockets.connect(page_target(devtools), max_size=None) as ws:
        cdp = Cdp(ws)
        await cdp.call("Page.enable")
        await cdp.call("Runtime.enable")
        await cdp.call("Page.navigate", url=f"http://{args.http}/")
        await cdp.until("document.readyState === 'complete' && !!document.getElementById('nick')",
                        "the page to load")

        # An account, and history in #lobby, before the page comes.
        line = LineUser(args.line)
        line.until("[server] Welcome to Chat Server !")
        line.send("NICK reader")
        line.until("[server] You are now known as reader")
        line.send("REGISTER pw-reader")
        line.until("[server] Account reader registered: you are logged in")
        line.send("NICK liner")
        line.until("[server] You are now known as liner")
        for i in range(1, 61):
            line.send(f"MSG old {i}")
        line.send("WHO")
        line.until("liner(reader)", exact=False)

        # Log in with SASL PLAIN to the account, under another nick.
        await cdp.eval("""(() => {
            document.getElementById('nick').value = 'webber';
            document.getElementById('account').value = 'reader';
            document.getElementById('password').value = 'pw-reader';
            document.getElementById('login-form').requestSubmit();
        })()""")
        await cdp.until(
            "document.getElementById('buffer-title').textContent === '#lobby' && "
            "document.getElementById('member-list').textContent.includes('webber')",
            "#lobby with webber in it")
        line.send("WHO")
        line.until("webber(reader)", exact=False)
        await cdp.until("document.getElementById('member-list').textContent.includes('liner')",
                        "liner in the member list")

        # Scroll-back: the latest 50 lines on joining, the 10 before on asking.
        log_has = "[...document.querySelectorAll('#log .text')].some(e => e.textContent === {!r})"
        await cdp.until(log_has.format("old 60") + " && " + log_has.format("old 11"),
                        "the latest history in #lobby")
        if await cdp.eval(log_has.format("old 10")):
            raise RuntimeError("older history shown before it was asked for")
        await cdp.until("!document.getElementById('older').hidden", "the 'Load older' button")
        await cdp.eval("document.getElementById('older').click()")
        await cdp.until(log_has.format("old 1") + " && " + log_has.format("old 10"),
                        "the older history in #lobby")
        order = await cdp.eval("[...document.querySelectorAll('#log .text')]"
                               ".map(e => e.textContent).filter(t => /^old \\d+$/.test(t))")
        if order != [f"old {i}" for i in range(1, 61)]:
            raise RuntimeError(f"history out of order: {order}")

        line.send("MSG hello from nc")
        await cdp.until("document.getElementById('log').textContent.includes('hello from nc')",
                        "the line user's message in the page")

        await cdp.eval("""(() => {
            document.getElementById('input').value = 'hello from the browser';
            document.getElementById('send-form').requestSubmit();
        })()""")
        line.until("[webber] hello from the browser")
        await cdp.until("document.getElementById('log').textContent.includes('hello from the browser')",
                        "the page's own message (echo-message) in the page")

        # A private conversation follows the other side's nick change.
        tabs = "[...document.querySelectorAll('#buffer-list button')].map(b => b.textContent)"
        line.send("PM webber psst")
        await cdp.until(tabs + ".includes('liner')", "a tab for liner's private message")
        line.send("NICK liner2")
        line.until("[server] You are now known as liner2")
        await cdp.until(tabs + ".includes('liner2') && !" + tabs + ".includes('liner')",
                        "liner's tab renamed liner2")
        line.send("PM webber again")
        await cdp.eval("document.querySelector('#buffer-list button[data-buffer=\"liner2\"]').click()")
        await cdp.until("document.getElementById('buffer-title').textContent === 'liner2' && "
                        "document.getElementById('log').textContent.includes('psst') && "
                        "document.getElementById('log').textContent.includes('again')",
                        "both private messages in the liner2 tab")
        await cdp.eval("document.querySelector('#buffer-list button[data-buffer=\"#lobby\"]').click()")
        await cdp.until("document.getElementById('buffer-title').textContent === '#lobby'",
                        "#lobby shown again")

        shot = await cdp.call("Page.captureScreenshot", format="png")
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True, help="the server's HTTP listener, HOST:PORT")
    ap.add_argument("--line", required=True, help="the server's line listener, HOST:PORT")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM")
                    or shutil.which("chromium") or shutil.which("chromium-browser"))
    args = ap.parse_args()
    if not args.chromium:
        sys.exit("no chromium on PATH")
    # Chromium's helper processes may still write to the profile as it
    # exits: its removal is best effort.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc, devtools = start_chromium(args.chromium, profile)
        try:
            asyncio.run(run(args, devtools))
        except Exception as e:  # the reason, without a traceback to dig through
            sys.exit(f"browser test failed: {e}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    print(f"ok: screenshot in {args.screenshot}")


if __name__ == "__main__":
    main()
