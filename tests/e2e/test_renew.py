"""`le-cp ssl renew`: same key, new serial, the site serves the new certificate at once."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from tests.fixtures.lecp import LeCp
from tests.fixtures.sandbox import RunningSandbox


def spki(cert) -> bytes:  # type: ignore[no-untyped-def]
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_nothing_due_then_forced_renewal_keeps_the_key(lecp: LeCp, sandbox: RunningSandbox) -> None:
    sandbox.add_user("renewer", "renew.test")
    lecp.ok("ssl", "issue", "--user", "renewer", "renew.test", "www.renew.test")
    first = sandbox.fetch_site_cert("renew.test")

    out = lecp.ok("ssl", "renew", "--user", "renewer")
    assert "renew.test: not due" in out  # Pebble's certificates last 5 years
    assert sandbox.fetch_site_cert("renew.test").serial_number == first.serial_number

    out = lecp.ok("ssl", "renew", "--user", "renewer", "--force")
    assert "renew.test: renewed" in out
    second = sandbox.fetch_site_cert("www.renew.test")
    assert second.serial_number != first.serial_number
    assert spki(second) == spki(first)


def test_a_removed_certificate_is_put_back_not_reordered(
    lecp: LeCp, sandbox: RunningSandbox
) -> None:
    sandbox.add_user("putback", "putback.test")
    lecp.ok("ssl", "issue", "--user", "putback", "putback.test")
    issued = sandbox.fetch_site_cert("putback.test")
    # Someone deletes the SSL host in cPanel's own interface.
    session = sandbox.login("putback")
    sandbox.uapi(session, "SSL", "delete_ssl", {"domain": "putback.test"})
    assert sandbox.fetch_site_cert("putback.test").serial_number != issued.serial_number
    out = lecp.ok("ssl", "renew", "--user", "putback")
    assert "putback.test: reinstalled" in out
    assert sandbox.fetch_site_cert("putback.test").serial_number == issued.serial_number
