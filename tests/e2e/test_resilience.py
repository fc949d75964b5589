"""Issuance that survives the CA rejecting half its nonces, a failed install, and a record left
by FleetSSL's plugin."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fixtures.lecp import LeCp, configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import RunningSandbox, is_service_certificate


@pytest.fixture
def lecp_nonce50(
    lecp: LeCp, sandbox: RunningSandbox, pebble: PebbleInstance, pebble_nonce50: PebbleInstance
) -> Iterator[LeCp]:
    """The plugin pointed at a Pebble that rejects 50 % of good nonces, then pointed back."""
    yield configure(sandbox, pebble_nonce50)
    configure(sandbox, pebble)


def test_five_issuances_in_a_row_at_50_percent_nonce_rejection(
    lecp_nonce50: LeCp, sandbox: RunningSandbox, pebble_nonce50: PebbleInstance
) -> None:
    sandbox.add_user("nonces", "nonce0.test", addons=[f"nonce{i}.test" for i in range(1, 5)])
    for i in range(5):
        lecp_nonce50.ok("ssl", "issue", "--user", "nonces", f"nonce{i}.test")
    log = (pebble_nonce50.workdir / "pebble.log").read_text()
    assert "Configured to reject 50% of good nonces" in log
    # Five certificates take exactly five accepted new-order, finalize and download requests
    # (15 in all). Pebble logs every request before it checks the nonce, so more than 15 means
    # rejected nonces were retried (all 15 accepted first time: odds 2^-15).
    sent = sum(log.count(f"POST {p}") for p in ("/order-plz", "/finalize-order/", "/certZ/"))
    assert sent > 15


def finalizations(pebble: PebbleInstance) -> int:
    return (pebble.workdir / "pebble.log").read_text().count("POST /finalize-order/")


def test_an_install_that_fails_once_is_completed_from_the_saved_certificate(
    lecp: LeCp, sandbox: RunningSandbox, pebble: PebbleInstance
) -> None:
    sandbox.add_user("flaky", "flaky.test")
    sandbox.set_fault("SSL::install_ssl", "status0", 1)
    before = finalizations(pebble)
    proc = lecp.run("ssl", "issue", "--user", "flaky", "flaky.test")
    assert proc.returncode == 1
    assert "issued and saved" in proc.stderr
    assert finalizations(pebble) == before + 1
    site = sandbox.fetch_site_cert("flaky.test")
    assert is_service_certificate(sandbox, site)  # still the service certificate

    out = lecp.ok("ssl", "issue", "--user", "flaky", "flaky.test")
    assert "saved certificate" in out
    assert finalizations(pebble) == before + 1  # nothing ordered again
    assert "Pebble" in sandbox.fetch_site_cert("flaky.test").issuer.rfc4514_string()


def _pem_cert_for(names: list[str]) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake LE Intermediate X1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=10))
        .not_valid_after(now + dt.timedelta(days=80))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def test_a_fleetssl_record_is_listed_and_upgraded(lecp: LeCp, sandbox: RunningSandbox) -> None:
    sandbox.add_user("fleet", "fleet.test")
    cert_pem, key_pem = _pem_cert_for(["fleet.test", "www.fleet.test"])
    account_key = _pem_cert_for(["unused.test"])[1]
    record = {
        "accountkey": account_key,
        "last_renewal_check": 1793000000,
        "disable_mail": False,
        "cert_reuses": {},
        "certs": {
            "fleet.test": {
                "domain": "fleet.test",
                "alt_names": ["fleet.test", "www.fleet.test"],
                "url": "https://acme-v02.api.letsencrypt.org/acme/order/1/2",
                "key": key_pem,
                "cert": cert_pem,
                "issuer": "",
                "key_id": "",
                "cert_id": "",
                "cert_expiry": 1800000000,
                "challenge_method": "http-01",
                "alternate_chains": {},
                "preferred_issuer": "",
            }
        },
    }
    home = sandbox.root / "home/fleet"
    st = home.stat()
    nvdata = home / ".cpanel/nvdata"
    nvdata.mkdir(parents=True)
    for folder in (home / ".cpanel", nvdata):
        os.chown(folder, st.st_uid, st.st_gid)
        folder.chmod(0o700)
    path: Path = nvdata / "letsencrypt-cpanel"
    path.write_text(json.dumps(record))
    os.chown(path, st.st_uid, st.st_gid)
    path.chmod(0o600)

    rows = json.loads(lecp.ok("ssl", "list", "--user", "fleet", "--json"))
    plugin = rows[0]["plugin"]
    assert plugin is not None and sorted(plugin["names"]) == ["fleet.test", "www.fleet.test"]

    lecp.ok("ssl", "issue", "--user", "fleet", "fleet.test", "www.fleet.test")
    upgraded = json.loads(path.read_text())
    assert upgraded["version"] >= 1
    assert "fleet.test" in upgraded["certificates"]
    assert path.stat().st_uid == st.st_uid and path.stat().st_mode & 0o777 == 0o600
