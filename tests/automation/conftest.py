"""A test bed per module or test: a sandbox, a Pebble validating on that sandbox's HTTP port, a
loopback SMTP server, and the plugin configured for all three (as `le-cp config set` would).
The automation runs in-process as root (the daemon's side); users' work runs in real workers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509

from letsencrypt_cpanel.config import Settings, load_settings
from letsencrypt_cpanel.user_jobs import RootSide
from tests.conftest import free_port
from tests.daemon.conftest import Bed as DaemonBed
from tests.daemon.conftest import Mailbox
from tests.fixtures.lecp import REPO, configure
from tests.fixtures.pebble import SHORT_VALIDITY_SECONDS, start_pebble
from tests.fixtures.sandbox import make_sandbox_root, start_sandbox


class Bed(DaemonBed):
    """The daemon tests' bed, with root's side of the automation at hand."""

    def settings(self) -> Settings:
        return load_settings({"LECP_ROOT": str(self.root)})

    def root_side(self) -> RootSide:
        return RootSide.build(self.settings())

    def hook(self, user: str) -> str:
        """cPanel runs the plugin's hook after creating `user`'s account; its answer."""
        event = {"context": {"event": "Accounts::Create"}, "data": {"user": user}}
        proc = subprocess.run(
            [sys.executable, str(REPO / "plugin/hooks/letsencrypt-cpanel-hook")],
            input=json.dumps(event),
            env=self.lecp.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return proc.stdout

    def secured(self, name: str) -> bool:
        """The site serves a Pebble certificate for `name` (not cpsrvd's fallback one)."""
        cert = self.sandbox.fetch_site_cert(name)
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = ext.get_values_for_type(x509.DNSName)
        return "Pebble" in cert.issuer.rfc4514_string() and name in names

    def commands(self, name: str) -> int:
        """How many times the sandbox's stand-in `name` (e.g. restartsrv_httpd) ran."""
        log = self.root / "var/cpanel/sandbox-commands.log"
        text = log.read_text(encoding="utf-8") if log.exists() else ""
        return text.count(f'"cmd": "{name}"')


def make_bed(tmp: Path, *, validity: int | None = None) -> Iterator[Bed]:
    root = make_sandbox_root()
    port = free_port()
    sandbox = start_sandbox(root, http_port=port)
    pebble = start_pebble(tmp / "pebble", http_port=port, validity_seconds=validity)
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        lecp = configure(sandbox, pebble)
        for key, value in {
            "smtp_host": "127.0.0.1",
            "smtp_port": str(smtp.port),
            "smtp_starttls": "false",
            "mail_from": "daemon@server.test",
            "admin_email": "admin@mail.test",
            "server_addresses": "127.0.0.1",
            "parallel_workers": "8",
            "hostcert_enabled": "true",
        }.items():
            lecp.ok("config", "set", key, value)
        yield Bed(sandbox, pebble, lecp, mailbox)
    finally:
        smtp.stop()
        pebble.stop()
        sandbox.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def short_bed(tmp_path: Path) -> Iterator[Bed]:
    """A bed whose Pebble issues 20-day certificates (renewal tests)."""
    yield from make_bed(tmp_path, validity=SHORT_VALIDITY_SECONDS)
