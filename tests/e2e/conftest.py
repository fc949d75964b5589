"""The product's own path, end to end: `le-cp` as root -> WHM user session -> a worker as the
user -> the same issuance code the cPanel page runs -> Pebble -> the sandbox installs it."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import RunningSandbox

REPO = Path(__file__).resolve().parents[2]
LE_CP = [sys.executable, "-m", "letsencrypt_cpanel.cli"]


@dataclass
class LeCp:
    sandbox: RunningSandbox
    pebble: PebbleInstance

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["LECP_ROOT"] = str(self.sandbox.root)
        env["PYTHONPATH"] = str(REPO)
        return env

    def run(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LE_CP, *args],
            env=self.env(),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, f"le-cp {' '.join(args)} failed: {proc.stderr}"
        return proc.stdout


def configure(sandbox: RunningSandbox, pebble: PebbleInstance) -> LeCp:
    """Point the plugin under the sandbox root at this Pebble, as an admin would with le-cp."""
    lecp = LeCp(sandbox, pebble)
    # Workers run as sandbox uids: the CA bundle must be readable by them (the fixture's copy
    # lives in a root-only pytest folder).
    bundle = sandbox.root / "etc/letsencrypt-cpanel-test-ca.pem"
    shutil.copyfile(pebble.ca_bundle, bundle)
    bundle.chmod(0o644)
    lecp.ok("config", "set", "acme_directory", pebble.directory_url)
    lecp.ok("config", "set", "acme_ca_bundle", str(bundle))
    lecp.ok("config", "set", "resolvers", pebble.dns_server)
    lecp.ok("config", "set", "http_port", str(sandbox.http_port))
    proc = lecp.run("config", "set", "whm_token", input_text=sandbox.whm_token + "\n")
    assert proc.returncode == 0, proc.stderr
    return lecp


@pytest.fixture(scope="session")
def lecp(sandbox: RunningSandbox, pebble: PebbleInstance) -> LeCp:
    return configure(sandbox, pebble)


_users = itertools.count(1)


@pytest.fixture
def new_user(sandbox: RunningSandbox) -> Callable[..., str]:
    """Add a fresh sandbox account; returns its user name. Domains are unique per test."""

    def make(domain: str | None = None, **kwargs: object) -> str:
        n = next(_users)
        user = f"e2e{n}"
        sandbox.add_user(user, domain or f"site{n}.test", **kwargs)  # type: ignore[arg-type]
        return user

    return make


@pytest.fixture
def sandbox_root(sandbox: RunningSandbox) -> Iterator[Path]:
    yield sandbox.root
