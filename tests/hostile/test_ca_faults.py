"""The CA dying in the middle of an order, and coming back with no memory of the user's account.

A Pebble of this test's own (on the sites' port, so it validates against the session sandbox);
the plugin is pointed at it for the test and back at the session Pebble afterwards."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.fixtures.lecp import LeCp, configure
from tests.fixtures.pebble import PEBBLE, PebbleInstance, start_pebble
from tests.fixtures.sandbox import RunningSandbox


@pytest.fixture
def own_pebble(
    sandbox: RunningSandbox, pebble: PebbleInstance, site_http_port: int, tmp_path: Path
) -> Iterator[PebbleInstance]:
    inst = start_pebble(tmp_path / "pebble", http_port=site_http_port)
    try:
        configure(sandbox, inst)
        yield inst
    finally:
        inst.stop()
        configure(sandbox, pebble)


def kill_ca(inst: PebbleInstance) -> None:
    """SIGKILL the Pebble process alone (challtestsrv, its DNS, stays up)."""
    proc = inst._procs[-1]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def restart_ca(inst: PebbleInstance) -> None:
    """Start Pebble again from the same config: same address and listener certificate, every
    account, order and authorization forgotten (Pebble keeps them in memory only)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(inst.workdir), "PEBBLE_VA_NOSLEEP": "1"}
    config = str(inst.workdir / "pebble-config.json")
    inst._spawn([PEBBLE, "-config", config, "-dnsserver", inst.dns_server], "pebble.log", env)
    inst._root = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            inst.root_pem()
            return
        except OSError:
            time.sleep(0.1)
        except Exception:  # requests' ConnectionError while Pebble starts
            time.sleep(0.1)
    raise RuntimeError("Pebble did not come back")


def record_of(sandbox: RunningSandbox, user: str) -> dict[str, object]:
    path = sandbox.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    return dict(json.loads(path.read_text()))


def test_ca_killed_mid_order_then_restarted_without_the_account(
    lecp: LeCp,
    sandbox: RunningSandbox,
    own_pebble: PebbleInstance,
    account: Callable[..., tuple[str, str]],
) -> None:
    user, domain = account("hxca", parked=["hxca-parked.test"])
    lecp.ok("ssl", "issue", "--user", user, domain)
    first = record_of(sandbox, user)
    accounts = first["accounts"]
    assert isinstance(accounts, dict) and len(accounts) == 1
    old_account_url = next(iter(accounts.values()))["url"]

    # Kill the CA the moment the challenge file is in place: the order exists, the
    # authorization is pending, nothing is finalized.
    home = sandbox.root / "home" / user
    pattern = "**/.well-known/acme-challenge/*"
    killed = threading.Event()

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed.is_set():
            if any(home.glob(pattern)):
                kill_ca(own_pebble)
                killed.set()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    proc = lecp.run("ssl", "issue", "--user", user, domain, "hxca-parked.test")
    thread.join(timeout=5)
    assert killed.is_set(), ("the order never reached its challenge", proc.stderr, proc.stdout)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "certificate authority" in proc.stderr.lower(), proc.stderr
    # Nothing lost: the certificate that was there is still recorded and still served.
    after = record_of(sandbox, user)
    assert after["accounts"] == first["accounts"]
    old_cert = first["certificates"][domain]["cert_pem"]  # type: ignore[index]
    assert after["certificates"][domain]["cert_pem"] == old_cert  # type: ignore[index]
    assert sandbox.fetch_site_cert(domain) == x509.load_pem_x509_certificate(old_cert.encode())
    assert not list(home.glob(pattern)), "challenge files are cleaned up"

    # The CA comes back with no memory: the account is registered again by itself.
    restart_ca(own_pebble)
    configure(sandbox, own_pebble)  # the same directory URL; only the test's trust bundle
    lecp.ok("ssl", "issue", "--user", user, domain, "hxca-parked.test")
    final = record_of(sandbox, user)
    accounts = final["accounts"]
    assert isinstance(accounts, dict) and list(accounts) == list(first["accounts"])  # type: ignore[arg-type]
    assert next(iter(accounts.values()))["url"] != old_account_url
    new_cert = final["certificates"][domain]["cert_pem"]  # type: ignore[index]
    served = sandbox.fetch_site_cert("hxca-parked.test")
    assert served == x509.load_pem_x509_certificate(new_cert.encode())
    log = (own_pebble.workdir / "pebble.log").read_text()
    assert log.count("POST /sign-me-up") >= 2
