"""irctest controller for bavard.

irctest (the IRC conformance suite) loads this module with
``--controller bavard_controller`` once this directory is on PYTHONPATH.
For each test it writes a bavard configuration (TOML) into a temporary
directory, starts ``bavard serve --config FILE`` on the address irctest
chose, waits until the port answers, and stops the server afterwards.

The class attributes below tell irctest what bavard implements, so that
tests of features it lacks (STS, ...) are skipped instead of failed.
Accounts are built in (no services daemon): ``registerUser`` creates them
with ``bavard account add``, in the database the server uses. WebSocket
tests get the HTTP listener (``listeners.http``) on the port irctest chose
for them.

Environment:
  BAVARD_BIN          the bavard binary (default: ``bavard`` on PATH)
  IRCTEST_DEBUG_LOGS  1/true: the server logs at debug level to the
                      test's output (irctest's own switch)

See docs/conformance.md for how to run the suite.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
from typing import Dict, List, Optional, Type, Union

from irctest import patma
from irctest.basecontrollers import (
    BaseServerController,
    DirectoryBasedController,
    ProcessStopped,
)
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities, OptionalBehaviors

SERVER_NAME = "My.Little.Server"
OPER_NAME = "operuser"
OPER_PASSWORD = "operpassword"


def bavard_bin() -> str:
    return os.environ.get("BAVARD_BIN") or "bavard"


@functools.lru_cache(maxsize=None)
def hash_password(binary: str, password: str) -> str:
    """Argon2 hash of `password`, as printed by ``bavard mkpasswd``.

    Hashing is deliberately slow, so each password is hashed once per
    process (the oper password is needed by every test)."""
    out = subprocess.run(
        [binary, "mkpasswd"],
        input=password.encode("utf-8"),
        stdout=subprocess.PIPE,
        check=True,
    )
    return out.stdout.decode("ascii").strip()


@functools.lru_cache(maxsize=None)
def toml_value(value: Union[str, int, float, bool, List[str]]) -> str:
    """A TOML literal for a Python value (JSON strings are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def toml_table(name: Optional[str], table: Dict[str, object]) -> str:
    header = "" if name is None else f"[{name}]\n"
    body = "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())  # type: ignore[arg-type]
    return header + body + "\n"


def socket_address(hostname: str, port: int) -> str:
    """A listener address bavard parses (an IP, not a name).

    irctest picks ports by binding the wildcard address; like Ergo's
    controller, the server is bound to the loopback address instead
    (clients connecting to 0.0.0.0 reach it on Linux)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "localhost": "127.0.0.1"}.get(
        hostname, hostname
    )
    if host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BavardController(BaseServerController, DirectoryBasedController):
    software_name = "bavard"
    _port_wait_interval = 0.02

    supports_sts = False
    # EXTERNAL is offered too, but irctest's clients show no certificate.
    supported_sasl_mechanisms = {"PLAIN", "SCRAM-SHA-256"}
    extban_mute_char = "m"  # ISUPPORT EXTBAN=,am
    nickserv = "NickServ"

    # Capabilities irctest knows of that bavard offers. Not offered (their
    # tests skip): sts.
    capabilities = frozenset(
        (
            Capabilities.ACCOUNT_NOTIFY,
            Capabilities.ACCOUNT_TAG,
            Capabilities.AWAY_NOTIFY,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.EXTENDED_JOIN,
            Capabilities.EXTENDED_MONITOR,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_REDACTION,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTILINE,
            Capabilities.MULTI_PREFIX,
            Capabilities.READ_MARKER,
            Capabilities.SERVER_TIME,
            Capabilities.SETNAME,
        )
    )

    # Optional behaviours bavard implements: a test that finds one missing
    # then fails instead of skipping. (metadata-3's before-connect is found
    # in the capability's value, not declared.)
    optional_behaviors = frozenset(
        (
            OptionalBehaviors.SASL_AFTER_REGISTRATION,
            OptionalBehaviors.SASL_REAUTHENTICATION,
            OptionalBehaviors.BAN_EXCEPTION_MODE,
            OptionalBehaviors.CAP_REQ_MINUS,
            OptionalBehaviors.ELIST_C,
            OptionalBehaviors.ELIST_M,
            OptionalBehaviors.ELIST_N,
            OptionalBehaviors.ELIST_T,
            OptionalBehaviors.ELIST_U,
            OptionalBehaviors.INVITE_EXCEPTION_MODE,
            OptionalBehaviors.INVITE_LIST,
            OptionalBehaviors.INVITE_OVERRIDES_LIMIT,
            OptionalBehaviors.MULTI_JOIN,
            OptionalBehaviors.MULTI_KICK,
            OptionalBehaviors.MULTI_NAMES_COMMAND,
            OptionalBehaviors.MULTI_PRIVMSG,
            OptionalBehaviors.NO_CTCP,
        )
    )

    # ISUPPORT tokens checked by isupport.py's testValues (docs/irc.md).
    isupport = {
        "BOT": "B",
        "CASEMAPPING": "rfc1459",
        "ELIST": "CMNTU",
        "EXTBAN": ",am",
        "INVEX": "I",
        "MONITOR": patma.ANYSTR,
        "PREFIX": "(ov)@+",
        "STATUSMSG": "@+",
        "TARGMAX": patma.ANYSTR,
        "UTF8ONLY": None,
        "WHOX": None,
    }

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str] = None,
        websocket_hostname: Optional[str] = None,
        websocket_port: Optional[int] = None,
    ) -> None:
        assert self.proc is None
        # Refuse what bavard lacks before starting anything; kill() gives
        # back the ports irctest reserved for this test.
        self.hostname = hostname
        self.port = port
        self.run_services = run_services
        # irctest orders a message from one client before another client's
        # read with that reader's own PING, which two connections cannot
        # guarantee: the server may read the second client's PING first
        # (both sockets ready in one poll). The WebSocket tests' client
        # (Python websockets, with a reader thread) makes that order flip
        # often; a short pause before each read, as sable's controller
        # takes for every test, lets the first client's line in first.
        self.sync_sleep_time = 0.05 if websocket_port else 0.0
        self.create_config()
        assert self.directory

        binary = bavard_bin()
        config_path = self.directory / "bavard.toml"
        self.config_path = config_path
        config_path.write_text(
            self._config_text(
                binary,
                hostname,
                port,
                password,
                ssl,
                faketime,
                websocket_hostname,
                websocket_port,
            )
        )

        command: List[Union[str, Path]] = []
        if faketime and shutil.which("faketime"):
            command += ["faketime", "-f", faketime]
            self.faketime_enabled = True
        command += [
            binary,
            "--log-level",
            "debug" if self.debug_mode else "warn",
            "serve",
            "--config",
            config_path,
        ]
        if self.debug_mode:
            self.proc = self.execute(command, proc_name="bavard")
        else:
            # Kept in the test's directory so a failed start can be explained.
            self._log_path = self.directory / "bavard.log"
            with self._log_path.open("wb") as log:
                self.proc = self.execute(command, stdout=log, stderr=log)
        try:
            self.wait_for_port()
            self.check_is_alive()  # not some other program on that port
        except ProcessStopped as e:
            raise ProcessStopped(f"{e}; bavard said: {self._log_tail()}") from None

    def wait_for_services(self) -> None:
        # Accounts are part of the server: nothing else to wait for.
        pass

    def registerUser(
        self,
        case,  # irctest.cases.BaseServerTestCase
        username: str,
        password: Optional[str] = None,
    ) -> None:
        """Creates the account `username` with ``bavard account add``, in
        the database the running server reads at each login."""
        assert password
        subprocess.run(
            [bavard_bin(), "account", "add", username, "--config", self.config_path],
            input=password.encode("utf-8"),
            stdout=subprocess.DEVNULL,
            check=True,
        )

    def kill_proc(self) -> None:
        """Stops the server: SIGTERM, then SIGKILL after a short grace.

        On SIGTERM bavard sends every client ERROR and waits up to 2 s for
        each to close its end. irctest stops the server before it closes
        its test clients, so that wait would add 2 s to every test."""
        assert self.proc
        # The whole process group: under faketime, bavard is its child.
        if not self._terminate_process_group(signal.SIGTERM):
            self.proc.terminate()
        try:
            self.proc.wait(0.5)
        except subprocess.TimeoutExpired:
            if not self._terminate_process_group(signal.SIGKILL):
                self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def _config_text(
        self,
        binary: str,
        hostname: str,
        port: int,
        password: Optional[str],
        ssl: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str] = None,
        websocket_port: Optional[int] = None,
    ) -> str:
        top: Dict[str, object] = {
            "server_name": SERVER_NAME,
            "network": "bavardtest",
            # links.py expects irctest's usual description.
            "server_description": "test server",
        }
        if password is not None:
            top["password"] = hash_password(binary, password)

        listen = socket_address(hostname, port)
        # The HTTP listener (IRC over WebSocket) only for the tests that ask
        # for it: its default port would clash between tests.
        http = "off"
        if websocket_port:
            http = socket_address(websocket_hostname or hostname, websocket_port)
        listeners = {
            "line": "off",
            "line_tls": "off",
            "irc": listen,
            "irc_tls": "off",
            "http": http,
        }
        tls = None
        if ssl:
            self._make_certificate()
            listeners["irc"] = "off"
            listeners["irc_tls"] = listen
            tls = {"cert": str(self.pem_path), "key": str(self.key_path)}

        # irctest opens many connections from one address in quick
        # succession; the per-address admission limits must not refuse them.
        limits: Dict[str, object] = {
            "connections_per_ip": 100000,
            "connection_rate": 100000.0,
            "connection_burst": 100000.0,
        }
        # History is on by default (1000 a conversation); the tests that
        # ask for it keep 100, as they did.
        history: Dict[str, object] = {"enabled": True}
        if self.test_config.chathistory:
            history["max_per_target"] = 100
        if faketime:
            # faketime speeds the server's clock up (x30 in list.py): keep
            # keep-alive and registration deadlines out of the tests' way.
            limits.update(
                ping_interval=86400, ping_timeout=86400, registration_timeout=86400
            )

        # Each server its own database, in the test's directory.
        storage = {"path": str(self.directory / "bavard.db")}

        accounts = {
            "before_connect": self.test_config.account_registration_before_connect,
            "require_email": self.test_config.account_registration_requires_email,
            # Tests register accounts and may connect under their names
            # without logging in: NickServ's warning would be an extra line.
            "nick_protection": "off",
        }

        text = toml_table(None, top)
        text += toml_table("listeners", listeners)
        if tls:
            text += toml_table("tls", tls)
        text += toml_table("limits", limits)
        text += toml_table("flood", {"enabled": False})
        text += toml_table("accounts", accounts)
        text += toml_table("storage", storage)
        text += toml_table("history", history)
        text += toml_table(
            "[oper]",
            {"name": OPER_NAME, "password": hash_password(binary, OPER_PASSWORD)},
        )
        return text

    def _make_certificate(self) -> None:
        """A self-signed certificate for the TLS listener.

        irctest's gen_ssl() makes an X.509 v1 certificate, which rustls
        refuses (UnsupportedCertVersion); ``req -x509`` makes a v3 one."""
        assert self.directory
        self.key_path = self.directory / "ssl.key"
        self.pem_path = self.directory / "ssl.pem"
        subprocess.run(
            [
                self.openssl_bin,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=" + SERVER_NAME,
                "-keyout",
                self.key_path,
                "-out",
                self.pem_path,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )

    def _log_tail(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-2000:].strip()
        except (AttributeError, OSError):
            return "(no log)"


def get_irctest_controller_class() -> Type[BavardController]:
    return BavardController
