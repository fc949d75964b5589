"""Alternate chains (`PEBBLE_ALTERNATE_ROOTS=2`), revocation seen at Pebble's
`/cert-status-by-serial/`, and dry runs against a second Pebble standing in for staging."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.fixtures.ca_bed import Bed, running_bed
from tests.fixtures.pebble import PebbleInstance, running_pebble


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    env = {"PEBBLE_ALTERNATE_ROOTS": "2"}
    with running_bed(tmp_path_factory.mktemp("chains"), extra_env=env) as running:
        yield running


def root_pem(ca: PebbleInstance, index: int) -> str:
    resp = requests.get(f"{ca.mgmt_url}/roots/{index}", verify=ca.ca_bundle, timeout=10)
    resp.raise_for_status()
    return resp.text


def common_name(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def verifies_against(bed: Bed, name: str, root: str) -> bool:
    """Whether the chain the site serves for `name` leads to `root` (and only that root)."""
    ctx = ssl.create_default_context(cadata=root)
    try:
        with socket.create_connection(("127.0.0.1", bed.sandbox.https_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=name):
                return True
    except ssl.SSLCertVerificationError:
        return False


def record(bed: Bed, user: str) -> dict[str, Any]:
    path = bed.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_preferred_chain_is_installed_and_kept_on_renewal(bed: Bed) -> None:
    roots = [root_pem(bed.pebble, i) for i in range(3)]
    names = [common_name(r) for r in roots]
    assert len(set(names)) == 3
    user = bed.new_user("chain", "chain.test")

    bed.lecp.ok("ssl", "issue", "--user", user, "chain.test")
    assert verifies_against(bed, "chain.test", roots[0])  # the CA's default chain

    bed.lecp.ok("ssl", "issue", "--user", user, "--preferred-chain", names[2], "chain.test")
    assert verifies_against(bed, "chain.test", roots[2])
    assert not verifies_against(bed, "chain.test", roots[0])
    entry = record(bed, user)["certificates"]["chain.test"]
    assert entry["preferred_chain"] == names[2]
    assert set(entry["alternate_chains"]) == set(names)  # every chain the CA offered, kept

    out = bed.lecp.ok("ssl", "renew", "--user", user, "--force")
    assert "chain.test: renewed" in out
    assert verifies_against(bed, "chain.test", roots[2])

    # A name no chain leads to: the CA's default chain.
    bed.lecp.ok("ssl", "issue", "--user", user, "--preferred-chain", "No Such Root", "chain.test")
    assert verifies_against(bed, "chain.test", roots[0])


def test_remove_and_revoke_shows_at_the_ca(bed: Bed) -> None:
    user = bed.new_user("revoke", "revoke.test", addons=["plain.test"])
    bed.lecp.ok("ssl", "issue", "--user", user, "revoke.test")
    serial = format(bed.sandbox.fetch_site_cert("revoke.test").serial_number, "x")
    assert bed.pebble.cert_status(serial)["Status"] == "Valid"

    out = bed.lecp.ok(
        "ssl", "remove", "--user", user, "--revoke", "--reason", "keyCompromise", "revoke.test"
    )
    assert "Revoked" in out
    status = bed.pebble.cert_status(serial)
    assert status["Status"] == "Revoked" and status["Reason"] == 1
    fallback = bed.sandbox.fetch_site_cert("revoke.test")
    assert fallback.serial_number != int(serial, 16)
    assert "revoke.test" not in record(bed, user)["certificates"]

    bed.lecp.ok("ssl", "issue", "--user", user, "plain.test")
    serial = format(bed.sandbox.fetch_site_cert("plain.test").serial_number, "x")
    bed.lecp.ok("ssl", "remove", "--user", user, "--revoke", "plain.test")
    status = bed.pebble.cert_status(serial)
    assert status["Status"] == "Revoked" and status["Reason"] == 0

    # A plain remove leaves the certificate valid at the CA.
    bed.lecp.ok("ssl", "issue", "--user", user, "revoke.test")
    serial = format(bed.sandbox.fetch_site_cert("revoke.test").serial_number, "x")
    bed.lecp.ok("ssl", "remove", "--user", user, "revoke.test")
    assert bed.pebble.cert_status(serial)["Status"] == "Valid"


def test_dry_run_issues_from_staging_and_installs_nothing(bed: Bed, tmp_path: Path) -> None:
    with running_pebble(tmp_path / "staging", http_port=bed.pebble.http_port) as staging:
        bed.lecp.ok("config", "set", "staging_directory", staging.directory_url)
        bed.lecp.ok("config", "set", "acme_ca_bundle", bed.combined_ca_bundle(staging))
        user = bed.new_user("dry", "dry.test")
        before = bed.sandbox.fetch_site_cert("dry.test")

        out = bed.lecp.ok("ssl", "issue", "--user", user, "--dry-run", "dry.test", "www.dry.test")
        assert "Dry run" in out and "nothing was saved or installed" in out
        assert bed.sandbox.fetch_site_cert("dry.test").serial_number == before.serial_number
        saved = record(bed, user)
        assert saved["certificates"] == {}
        assert list(saved["accounts"]) == [staging.directory_url]  # the staging account alone
        # The real CA issued nothing; the staging CA did (its account's order list).
        rows = json.loads(bed.lecp.ok("ssl", "list", "--user", user, "--json"))
        assert rows[0]["status"] == "not_secured"

        # Then the real thing, from the configured CA.
        bed.lecp.ok("ssl", "issue", "--user", user, "dry.test")
        assert "Pebble" in bed.sandbox.fetch_site_cert("dry.test").issuer.rfc4514_string()
        assert set(record(bed, user)["accounts"]) == {
            staging.directory_url,
            bed.pebble.directory_url,
        }


def test_a_certificates_own_ca_is_remembered_for_renewals(bed: Bed, tmp_path: Path) -> None:
    with running_pebble(tmp_path / "other-ca", http_port=bed.pebble.http_port) as other:
        bed.lecp.ok("config", "set", "acme_ca_bundle", bed.combined_ca_bundle(other))
        user = bed.new_user("perca", "perca.test")
        bed.lecp.ok(
            "ssl", "issue", "--user", user, "--directory", other.directory_url, "perca.test"
        )
        other_root = other.root_pem()
        assert verifies_against(bed, "perca.test", other_root)
        assert record(bed, user)["certificates"]["perca.test"]["directory"] == other.directory_url

        first = bed.sandbox.fetch_site_cert("perca.test").serial_number
        assert "perca.test: renewed" in bed.lecp.ok("ssl", "renew", "--user", user, "--force")
        assert bed.sandbox.fetch_site_cert("perca.test").serial_number != first
        assert verifies_against(bed, "perca.test", other_root)  # renewed at the same CA

        proc = bed.lecp.run("ssl", "issue", "--user", user, "--directory", "ftp://x", "perca.test")
        assert proc.returncode == 1 and "https://" in proc.stderr
