"""FleetSSL's record (prior-art.md §4.7): read, listed, upgraded in place, PEMs kept as-is."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from letsencrypt_cpanel.config import LETSENCRYPT_PRODUCTION
from letsencrypt_cpanel.record_format import RECORD_VERSION, Record
from letsencrypt_cpanel.store import RecordStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "fleetssl-record.json"
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_certificate(
    key: PrivateKey, names: list[str], issuer_key: PrivateKey, issuer: x509.Name, days: int = 90
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(issuer_key, hashes.SHA256())
    )


def fleetssl_record() -> dict[str, Any]:
    """A record as FleetSSL's Go code wrote it, with real keys and certificates."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Intermediate R3")])
    ca_cert = make_certificate(ca_key, ["Test Intermediate R3"], ca_key, ca_name, days=365)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_cert = make_certificate(rsa_key, ["example.com", "www.example.com"], ca_key, ca_name)
    ec_cert = make_certificate(ec_key, ["shop.example.net"], ca_key, ca_name)
    chain = cert_pem(ca_cert)
    return {
        "accountkey": key_pem(ec.generate_private_key(ec.SECP256R1())),
        "last_renewal_check": 1_793_000_000,
        "disable_mail": True,
        "cert_reuses": {"alias.example.org": "example.com"},
        "certs": {
            "example.com": {
                "domain": "example.com",
                "alt_names": ["example.com", "www.example.com"],
                "url": "https://acme-v02.api.letsencrypt.org/acme/order/1/2",
                "key": key_pem(rsa_key),
                "cert": cert_pem(rsa_cert),
                "issuer": chain,
                "key_id": "d2f1c_5e6b7_4c8b0b0e3d5c2f1a0b9c8d7e6f5a4b3c",
                "cert_id": "example_com_d2f1c_5e6b7_1795000000_0123456789abcdef",
                "cert_expiry": int(rsa_cert.not_valid_after_utc.timestamp()),
                "challenge_method": "http-01",
                "alternate_chains": {"Test Intermediate R3": chain},
                "preferred_issuer": "Test Intermediate R3",
            },
            "shop.example.net": {
                "domain": "shop.example.net",
                "alt_names": None,  # Go marshals a nil slice as null
                "url": "https://acme-v02.api.letsencrypt.org/acme/order/1/3",
                "key": key_pem(ec_key),
                "cert": cert_pem(ec_cert),
                "issuer": chain,
                "key_id": "",
                "cert_id": "",
                "cert_expiry": int(ec_cert.not_valid_after_utc.timestamp()),
                "challenge_method": "dns-01",
                "alternate_chains": None,
                "preferred_issuer": "",
            },
        },
    }


@pytest.fixture
def home() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="lecp-fleetssl-"))
    base.chmod(0o755)
    home = base / "home"
    (home / ".cpanel" / "nvdata").mkdir(parents=True)
    yield home
    shutil.rmtree(base)


def write_record(home: Path, text: str) -> Path:
    path = home / ".cpanel" / "nvdata" / "letsencrypt-cpanel"
    path.write_text(text)
    # FleetSSL's record was written through NVData, readable by its owner and group.
    path.chmod(0o644)
    return path


def check_upgraded(record: Record, old: dict[str, Any]) -> None:
    assert record.upgraded_from == "fleetssl"
    account = record.accounts[LETSENCRYPT_PRODUCTION]
    assert account.key_pem == old["accountkey"]
    assert account.url == ""
    assert record.disable_mail is True
    assert record.last_renewal_check == old["last_renewal_check"]
    assert record.extras["cert_reuses"] == old["cert_reuses"]
    assert set(record.certificates) == set(old["certs"])
    for vhost, entry in record.certificates.items():
        before = old["certs"][vhost]
        assert entry.key_pem == before["key"]
        assert entry.cert_pem == before["cert"]
        assert entry.chain_pem == before["issuer"]
        assert entry.not_after == before["cert_expiry"]
        assert entry.order_url == before["url"]
        assert entry.cert_id == before["cert_id"]
        assert entry.key_id == before["key_id"]
        assert entry.challenge_method == before["challenge_method"]
        assert entry.preferred_chain == before["preferred_issuer"]
        assert entry.alternate_chains == (before["alternate_chains"] or {})
        assert entry.directory == LETSENCRYPT_PRODUCTION
        leaf = x509.load_pem_x509_certificate(before["cert"].encode())
        assert entry.not_before == int(leaf.not_valid_before_utc.timestamp())
        assert entry.names[0] == vhost
    example = record.certificates["example.com"]
    assert example.names == ["example.com", "www.example.com"]
    assert example.key_type == "rsa:2048"
    assert example.state == "installed"
    shop = record.certificates["shop.example.net"]
    assert shop.names == ["shop.example.net"]
    assert shop.key_type == "ecdsa:p-384"
    assert shop.state == "issued"  # never installed: FleetSSL had no cert_id for it


def test_fleetssl_record_is_read_and_every_certificate_listed(home: Path) -> None:
    old = fleetssl_record()
    path = write_record(home, json.dumps(old))
    before = path.read_bytes()
    record = RecordStore(home).load()
    check_upgraded(record, old)
    assert path.read_bytes() == before  # reading never rewrites


def test_fleetssl_record_is_upgraded_in_place_on_save(home: Path) -> None:
    old = fleetssl_record()
    path = write_record(home, json.dumps(old))
    store = RecordStore(home)
    with store.locked() as txn:
        assert txn.moved_aside is None
        txn.save()
    data = json.loads(path.read_text())
    assert data["version"] == RECORD_VERSION
    assert "certs" not in data and "accountkey" not in data
    assert path.stat().st_mode & 0o777 == 0o600
    assert data["accounts"][LETSENCRYPT_PRODUCTION]["key_pem"] == old["accountkey"]
    for vhost, before in old["certs"].items():
        after = data["certificates"][vhost]
        # Byte-identical PEMs: the installed certificate must still match cPanel's copy.
        assert after["key_pem"].encode() == before["key"].encode()
        assert after["cert_pem"].encode() == before["cert"].encode()
        assert after["chain_pem"].encode() == before["issuer"].encode()
    upgraded = store.load()
    assert upgraded.upgraded_from == ""
    check_upgraded(Record.from_json(json.dumps(old)), old)
    assert upgraded == Record.from_json(json.dumps(old))


def test_double_encoded_fleetssl_record_is_accepted(home: Path) -> None:
    old = fleetssl_record()
    write_record(home, json.dumps(json.dumps(old)))
    store = RecordStore(home)
    check_upgraded(store.load(), old)
    with store.locked() as txn:
        assert txn.moved_aside is None
        check_upgraded(txn.record, old)
        txn.save()
    assert json.loads(store.path.read_text())["version"] == RECORD_VERSION


def test_fixture_file_is_read() -> None:
    old = json.loads(FIXTURE.read_text())
    record = Record.from_json(FIXTURE.read_text())
    check_upgraded(record, old)
    for entry in record.certificates.values():
        assert entry.not_after > entry.not_before > 0


def test_empty_and_minimal_fleetssl_records() -> None:
    assert Record.from_json("{}").certificates == {}
    record = Record.from_json('{"certs": null, "accountkey": "", "disable_mail": null}')
    assert record.accounts == {} and record.certificates == {}
    assert record.disable_mail is False


def test_broken_certificate_pem_is_kept_as_it_is() -> None:
    record = Record.from_json(
        json.dumps({"certs": {"a.com": {"domain": "a.com", "cert": "garbage", "key": "k"}}})
    )
    entry = record.certificates["a.com"]
    assert (entry.cert_pem, entry.key_pem, entry.not_before, entry.key_type) == (
        "garbage",
        "k",
        0,
        "",
    )
