"""A test bed of its own per test: a sandbox, a Pebble issuing 20-day certificates that
validates on that sandbox's HTTP port, a real SMTP server on loopback, and the plugin configured
for all three. The daemon runs as a real subprocess (`daemon/letsencrypt-cpaneld`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from letsencrypt_cpanel.config import load_settings, update_config
from letsencrypt_cpanel.state import StateDB
from tests.conftest import free_port
from tests.fixtures.lecp import REPO, LeCp, configure
from tests.fixtures.pebble import SHORT_VALIDITY_SECONDS, PebbleInstance, start_pebble
from tests.fixtures.sandbox import RunningSandbox, make_sandbox_root, start_sandbox

DAEMON = REPO / "daemon" / "letsencrypt-cpaneld"


@dataclass
class Mailbox:
    """What the loopback SMTP server received."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


@dataclass
class Bed:
    sandbox: RunningSandbox
    pebble: PebbleInstance
    lecp: LeCp
    mailbox: Mailbox

    @property
    def root(self) -> Path:
        return self.sandbox.root

    def set(self, name: str, value: str) -> None:
        """What `le-cp config set` does (validated, atomic), without a process per setting."""
        update_config(self.root, {name: value})

    def daemon(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [sys.executable, str(DAEMON), *args],
                env=self.lecp.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the daemon hung; it said:\n{exc.stderr}") from None

    def once(self) -> str:
        proc = self.daemon("--once")
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(DAEMON), *args],
            env=self.lecp.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def issue(self, user: str, *names: str) -> None:
        self.lecp.ok("ssl", "issue", "--user", user, *names)

    def state(self) -> StateDB:
        return StateDB.open(load_settings({"LECP_ROOT": str(self.root)}))

    def home(self, user: str) -> Path:
        return self.root / "home" / user

    def forget_acme_account(self, user: str) -> None:
        """Pebble reuses an account's valid authorizations half of the time (pebble.md), so a
        renewal might never fetch a challenge: the test (never the product) makes the user's
        record forget its ACME account, so the next order starts from fresh authorizations."""
        path = self.home(user) / ".cpanel/nvdata/letsencrypt-cpanel"
        record = json.loads(path.read_text())
        record["accounts"] = {}
        path.write_text(json.dumps(record))


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    root = make_sandbox_root()
    port = free_port()
    sandbox = start_sandbox(root, http_port=port)
    pebble = start_pebble(
        tmp_path / "pebble", http_port=port, validity_seconds=SHORT_VALIDITY_SECONDS
    )
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        lecp = configure(sandbox, pebble)
        settings = {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "mail_from": "daemon@server.test",
            # A site failing http-01 falls back to dns-01 in the sandbox's zones, which this
            # Pebble's DNS does not serve: give up on that quickly.
            "dns_propagation_timeout": 2,
        }
        update_config(root, settings)
        yield Bed(sandbox, pebble, lecp, mailbox)
    finally:
        smtp.stop()
        pebble.stop()
        sandbox.stop()
        shutil.rmtree(root, ignore_errors=True)
