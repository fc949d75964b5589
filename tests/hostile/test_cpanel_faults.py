"""cPanel misbehaving (the sandbox's fault switches), through `le-cp ssl issue`: every failure is
one clear line, nothing is lost, and a certificate the CA already issued is installed on the next
try from the record, never ordered again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.fixtures.lecp import LeCp
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import RunningSandbox
from tests.hostile.conftest import pebble_posts


def record_of(sandbox: RunningSandbox, user: str) -> dict[str, Any]:
    path = sandbox.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    return dict(json.loads(path.read_text()))


def one_clear_line(stderr: str) -> None:
    assert stderr.count("\n") == 1 and stderr.startswith("le-cp: "), stderr
    assert "Traceback" not in stderr and "<html" not in stderr.lower(), stderr


@pytest.fixture(autouse=True)
def _faults_off(sandbox: RunningSandbox) -> Any:
    yield
    sandbox.clear_faults()


@pytest.mark.parametrize("mode", ["status0", "html", "truncated", "drop", "timeout"])
def test_install_failing_after_the_ca_issued_is_completed_from_the_saved_certificate(
    lecp: LeCp,
    sandbox: RunningSandbox,
    pebble: PebbleInstance,
    account: Callable[..., tuple[str, str]],
    mode: str,
) -> None:
    user, domain = account("hxinst")
    sandbox.set_fault("SSL::install_ssl", mode, 1)
    finalized = pebble_posts(pebble, "/finalize-order/")

    # The client's own timeout (`cpanel_timeout`) gives up on a silent cPanel, not the sandbox.
    lecp.ok("config", "set", "cpanel_timeout", "4" if mode == "timeout" else "60")
    try:
        first = lecp.run("ssl", "issue", "--user", user, domain)
    finally:
        lecp.ok("config", "set", "cpanel_timeout", "60")
    assert first.returncode == 1, first.stdout
    one_clear_line(first.stderr)
    assert "saved" in first.stderr
    if mode == "timeout":
        assert "no answer within 4 s" in first.stderr
    assert pebble_posts(pebble, "/finalize-order/") == finalized + 1
    saved = record_of(sandbox, user)["certificates"][domain]
    assert saved["state"] == "issued" and "BEGIN CERTIFICATE" in saved["cert_pem"]
    if mode != "truncated":  # a cut-off answer comes after cPanel did the work
        # (The fallback may be anything: another test may have secured the hostname.)
        site = sandbox.fetch_site_cert(domain)
        ours = x509.load_pem_x509_certificate(saved["cert_pem"].encode())
        assert site != ours, "nothing of ours is installed yet"

    second = lecp.ok("ssl", "issue", "--user", user, domain)
    assert "saved certificate" in second
    assert pebble_posts(pebble, "/finalize-order/") == finalized + 1, "ordered again"
    after = record_of(sandbox, user)["certificates"][domain]
    assert after["state"] == "installed" and after["cert_pem"] == saved["cert_pem"]
    served = sandbox.fetch_site_cert(domain)
    assert served == x509.load_pem_x509_certificate(saved["cert_pem"].encode())


@pytest.mark.parametrize(
    ("key", "mode"),
    [
        ("DomainInfo::domains_data", "status0"),
        ("DomainInfo::domains_data", "html"),
        ("DomainInfo::domains_data", "truncated"),
        ("DomainInfo::domains_data", "drop"),
        ("whm:create_user_session", "status0"),
        ("whm:create_user_session", "html"),
        ("whm:accountsummary", "truncated"),
        ("whm:accountsummary", "drop"),
    ],
)
def test_cpanel_failing_before_the_order_is_one_line_and_no_order(
    lecp: LeCp,
    sandbox: RunningSandbox,
    pebble: PebbleInstance,
    account: Callable[..., tuple[str, str]],
    key: str,
    mode: str,
) -> None:
    user, domain = account("hxpre")
    lecp.ok("ssl", "issue", "--user", user, domain)
    path: Path = sandbox.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    before = path.read_bytes()
    orders = pebble_posts(pebble, "/order-plz")

    sandbox.set_fault(key, mode, None)
    proc = lecp.run("ssl", "issue", "--user", user, domain)
    assert proc.returncode == 1, proc.stdout
    one_clear_line(proc.stderr)
    assert pebble_posts(pebble, "/order-plz") == orders
    certificate = json.loads(before)["certificates"][domain]
    assert (
        json.loads(path.read_bytes())["certificates"][domain]["cert_pem"]
        == (certificate["cert_pem"])
    )
    assert sandbox.fetch_site_cert(domain) == x509.load_pem_x509_certificate(
        certificate["cert_pem"].encode()
    )
    sandbox.clear_faults()
    lecp.ok("ssl", "issue", "--user", user, domain)  # and it works again once cPanel does
