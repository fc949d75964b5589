"""`le-cp ssl issue|list|reinstall|remove` against Pebble and the sandbox, as root, for real."""

from __future__ import annotations

import json
import socket
import ssl

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cpanel_sandbox import certs, sslstorage
from tests.fixtures.lecp import LeCp
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import RunningSandbox, is_service_certificate


def san_names(cert: x509.Certificate) -> set[str]:
    return set(
        cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.DNSName)
    )


def test_vhost_with_www_addon_alias_parked_and_idn(
    lecp: LeCp, sandbox: RunningSandbox, pebble: PebbleInstance, new_user
) -> None:
    user = new_user(
        "shop.test",
        addons=["xn--bcher-kva.test", "addon.test"],
        parked=["parked.test"],
    )
    # The main vhost: its www. name and a parked name on the same certificate.
    out = lecp.ok("ssl", "issue", "--user", user, "shop.test", "www.shop.test", "parked.test")
    assert "shop.test" in out
    for name in ("shop.test", "www.shop.test", "parked.test"):
        cert = sandbox.fetch_site_cert(name)
        assert san_names(cert) == {"shop.test", "www.shop.test", "parked.test"}
        assert "Pebble" in cert.issuer.rfc4514_string()

    # An addon domain with its www. alias.
    lecp.ok("ssl", "issue", "--user", user, "addon.test", "www.addon.test")
    assert san_names(sandbox.fetch_site_cert("www.addon.test")) == {"addon.test", "www.addon.test"}

    # An internationalised name, typed in Unicode, goes on the wire as punycode.
    lecp.ok("ssl", "issue", "--user", user, "bücher.test")
    assert "xn--bcher-kva.test" in san_names(sandbox.fetch_site_cert("xn--bcher-kva.test"))

    rows = json.loads(lecp.ok("ssl", "list", "--user", user, "--json"))
    by_vhost = {row["vhost"]: row for row in rows}
    # www.parked.test was left off on purpose: the list says so.
    assert by_vhost["shop.test"]["status"] == "partial"
    assert by_vhost["shop.test"]["uncovered"] == ["www.parked.test"]
    assert by_vhost["addon.test"]["status"] == "secured", by_vhost["addon.test"]
    assert by_vhost["shop.test"]["managed"] is True
    assert by_vhost["addon.test"]["managed"] is True


def test_key_types_and_chain_verifies(
    lecp: LeCp, sandbox: RunningSandbox, pebble: PebbleInstance, new_user
) -> None:
    user = new_user("keys.test", addons=["rsa4096.test"])
    lecp.ok("ssl", "issue", "--user", user, "--key-type", "ecdsa:p-256", "keys.test")
    cert = sandbox.fetch_site_cert("keys.test")
    pub = cert.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"

    lecp.ok("ssl", "issue", "--user", user, "--key-type", "rsa:4096", "rsa4096.test")
    pub4096 = sandbox.fetch_site_cert("rsa4096.test").public_key()
    assert isinstance(pub4096, rsa.RSAPublicKey) and pub4096.key_size == 4096

    # The chain the site serves verifies against this Pebble's root.
    ctx = ssl.create_default_context(cadata=pebble.root_pem())
    ctx.check_hostname = True
    with socket.create_connection(("127.0.0.1", sandbox.https_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="keys.test") as tls:
            assert tls.version()


def test_reinstall_and_remove(lecp: LeCp, sandbox: RunningSandbox, new_user) -> None:
    user = new_user("again.test")
    lecp.ok("ssl", "issue", "--user", user, "again.test")
    issued = sandbox.fetch_site_cert("again.test")
    lecp.ok("ssl", "reinstall", "--user", user, "again.test")
    assert sandbox.fetch_site_cert("again.test").serial_number == issued.serial_number

    # The ids cPanel gives them in the user's SSL storage (~/ssl/ssl.db, ~/ssl/{certs,keys}/).
    cert_id, key_id = certs.cert_id(issued), certs.key_id(issued.public_key())
    ssl_home = sandbox.root / "home" / user / "ssl"
    stored = sslstorage.read_db(sandbox.root, user)
    assert cert_id in stored["certificate"] and key_id in stored["key"]
    assert (ssl_home / "certs" / f"{cert_id}.crt").exists()
    assert (ssl_home / "keys" / f"{key_id}.key").exists()

    lecp.ok("ssl", "remove", "--user", user, "again.test")
    stored = sslstorage.read_db(sandbox.root, user)
    assert cert_id not in stored["certificate"] and key_id not in stored["key"]
    assert not (ssl_home / "certs" / f"{cert_id}.crt").exists()
    assert not (ssl_home / "keys" / f"{key_id}.key").exists()
    fallback = sandbox.fetch_site_cert("again.test")
    assert fallback.serial_number != issued.serial_number
    assert is_service_certificate(sandbox, fallback)  # what cpsrvd serves for unclaimed names
    rows = json.loads(lecp.ok("ssl", "list", "--user", user, "--json"))
    assert rows[0]["status"] == "not_secured" and rows[0]["plugin"] is None
