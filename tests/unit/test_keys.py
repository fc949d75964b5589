"""keys.py: key types, CSRs, certificate facts, chains, IDNA."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from letsencrypt_cpanel import keys
from letsencrypt_cpanel.config import KEY_TYPES


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return {kt: keys.generate_private_key(kt) for kt in KEY_TYPES}


def _self_signed(key_pem: str, names: list[str], *, issuer_o: str = "") -> str:
    key = keys.load_private_key(key_pem)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, names[0])]
    if issuer_o:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer_o))
    name = x509.Name(attrs)
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x0ABCDEF)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_each_key_type_round_trips(generated: dict[str, str], key_type: str) -> None:
    pem = generated[key_type]
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert keys.key_type_of(pem) == key_type


def test_default_key_type_is_rsa_2048() -> None:
    assert keys.key_type_of(keys.generate_private_key()) == "rsa:2048"


@pytest.mark.parametrize("bad", ["rsa:1024", "ed25519", "", "RSA:2048"])
def test_unknown_key_type_lists_the_choices(bad: str) -> None:
    with pytest.raises(ValueError, match="ecdsa:p-384"):
        keys.generate_private_key(bad)


def test_csr_has_every_name_in_san_and_first_as_cn(generated: dict[str, str]) -> None:
    csr_pem = keys.make_csr(
        generated["ecdsa:p-256"], ["Example.com", "www.example.com", "bücher.de"]
    )
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.is_signature_valid
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "example.com",
        "www.example.com",
        "xn--bcher-kva.de",
    ]
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.com"


def test_csr_leaves_cn_out_when_first_name_is_longer_than_64(generated: dict[str, str]) -> None:
    long_name = ("a" * 60) + ".example.com"
    csr = x509.load_pem_x509_csr(keys.make_csr(generated["rsa:2048"], [long_name, "b.example"]))
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [long_name, "b.example"]


def test_csr_needs_a_name(generated: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        keys.make_csr(generated["rsa:2048"], [])


def test_facts_of_a_certificate(generated: dict[str, str]) -> None:
    pem = _self_signed(
        generated["ecdsa:p-384"], ["site.example", "www.site.example"], issuer_o="Org"
    )
    facts = keys.certificate_facts(pem)
    assert facts.names == ("site.example", "www.site.example")
    assert facts.common_name == "site.example"
    assert facts.issuer_common_name == "site.example"
    assert facts.issuer_organization == "Org"
    assert facts.not_before == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert facts.not_after.tzinfo is not None
    assert facts.lifetime == dt.timedelta(days=90)
    assert facts.serial_hex == "abcdef"
    assert facts.key_type == "ecdsa:p-384"
    assert facts.is_self_signed


def test_fingerprint_format(generated: dict[str, str]) -> None:
    pem = _self_signed(generated["ecdsa:p-256"], ["fp.example"])
    fp = keys.certificate_facts(pem).fingerprint_sha256
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fp)
    der = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256())
    assert fp.replace(":", "") == der.hex().upper()


def test_key_mismatch_is_detected(generated: dict[str, str]) -> None:
    pem = _self_signed(generated["rsa:2048"], ["m.example"])
    assert keys.key_matches_certificate(generated["rsa:2048"], pem)
    assert not keys.key_matches_certificate(generated["rsa:4096"], pem)
    assert not keys.key_matches_certificate(generated["ecdsa:p-256"], pem)


def test_split_fullchain(generated: dict[str, str]) -> None:
    leaf = _self_signed(generated["ecdsa:p-256"], ["leaf.example"])
    mid = _self_signed(generated["ecdsa:p-384"], ["mid.example"])
    top = _self_signed(generated["rsa:2048"], ["top.example"])
    got_leaf, chain = keys.split_fullchain(leaf + "\n" + mid + top)
    assert got_leaf == leaf
    assert chain == mid + top
    assert keys.split_fullchain(leaf) == (leaf, "")
    with pytest.raises(ValueError):
        keys.split_fullchain("nothing here")


@pytest.mark.parametrize(
    ("given", "wire"),
    [
        ("example.com", "example.com"),
        ("WWW.Example.COM.", "www.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("*.bücher.example", "*.xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("straße.de", "xn--strae-oqa.de"),
    ],
)
def test_to_idna(given: str, wire: str) -> None:
    assert keys.to_idna(given) == wire


def test_to_idna_refuses_what_idna_cannot_encode() -> None:
    with pytest.raises(ValueError, match="internationalized"):
        keys.to_idna("-x.例え")
