"""Keys, CSRs, PEM and certificate facts (cryptography only; no ACME here).

Key types are named as in `config.KEY_TYPES`: "rsa:2048" (the default), "rsa:4096",
"ecdsa:p-256", "ecdsa:p-384". Private keys travel as PKCS#8 PEM text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import idna
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .config import KEY_TYPES

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ecdsa:p-256": ec.SECP256R1,
    "ecdsa:p-384": ec.SECP384R1,
}
_CURVE_NAMES = {"secp256r1": "ecdsa:p-256", "secp384r1": "ecdsa:p-384"}
# RFC 5280 ub-common-name: a CN longer than 64 characters is invalid, so long names live in
# the SAN only (which is all that browsers and the CA look at anyway).
_MAX_CN_LENGTH = 64

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# Keys being made ahead of time, by type (prefetch_private_key); at most one per type.
_ahead: dict[str, Future[str]] = {}


def prefetch_private_key(key_type: str) -> None:
    """Start making a key of `key_type` in a background thread; the next
    `generate_private_key(key_type)` in this process takes it.

    OpenSSL releases the GIL while it searches for primes, so an RSA key (40-300 ms) is made
    while the caller waits on the network (cPanel's domains_data, the CA's directory and
    account) instead of after. An unknown type, or one already under way, is ignored."""
    if key_type not in KEY_TYPES or key_type in _ahead:
        return
    future: Future[str] = Future()

    def make() -> None:
        try:
            future.set_result(_new_private_key(key_type))
        except BaseException as exc:  # handed to whoever takes the key
            future.set_exception(exc)

    _ahead[key_type] = future
    threading.Thread(target=make, name=f"key {key_type}", daemon=True).start()


def _settle_prefetched() -> None:
    # Before any fork: a key still being made would never be finished in the child (threads do
    # not cross a fork), and the child that takes it would wait forever. So a fork waits for it;
    # `le-cp ssl issue` starts the key in root while root asks WHM, and the worker takes it.
    for future in list(_ahead.values()):
        with contextlib.suppress(BaseException):
            future.result()


os.register_at_fork(before=_settle_prefetched)


def generate_private_key(key_type: str = "rsa:2048") -> str:
    """A new private key of `key_type`, as PKCS#8 PEM (the prefetched one when there is one).
    Raises ValueError for an unknown type."""
    ahead = _ahead.pop(key_type, None)
    if ahead is not None:
        return ahead.result()
    return _new_private_key(key_type)


def _new_private_key(key_type: str) -> str:
    key: PrivateKey
    if key_type in ("rsa:2048", "rsa:4096"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    elif key_type in _CURVES:
        key = ec.generate_private_key(_CURVES[key_type]())
    else:
        raise ValueError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_private_key(key_pem: str | bytes) -> PrivateKey:
    """Parse a PEM private key (PKCS#8 or traditional). Raises ValueError if it is not RSA/EC."""
    data = key_pem.encode("ascii") if isinstance(key_pem, str) else key_pem
    # No RSA consistency check: it costs 20-90 ms a load (cryptography 42+ tests the primes),
    # paid twice an issue (account key, domain key). Every key loaded here is one this plugin
    # generated and keeps in the user's own 0600 record; a key broken by hand only makes the
    # user's own signatures fail at the CA, which reports it.
    key = serialization.load_pem_private_key(
        data, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError("only RSA and ECDSA keys are supported")
    return key


def _public_key_type(key: object) -> str:
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return f"rsa:{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return _CURVE_NAMES.get(key.curve.name, f"ecdsa:{key.curve.name}")
    return "unknown"


def key_type_of(key_pem: str | bytes) -> str:
    """The key type ("rsa:2048", "ecdsa:p-256", ...) of a PEM private key."""
    return _public_key_type(load_private_key(key_pem))


def to_idna(name: str) -> str:
    """A domain name as sent on the wire: lower case, A-labels (punycode) for UTF-8 labels.

    Users may type "bücher.example"; the CA and DNS only know "xn--bcher-kva.example".
    A leading "*." (wildcard) is kept. Raises ValueError for a name IDNA cannot encode.
    """
    name = name.strip().rstrip(".").lower()
    prefix = ""
    if name.startswith("*."):
        prefix, name = "*.", name[2:]
    if name.isascii():
        return prefix + name
    try:
        # IDNA 2008 with UTS #46 mapping, as browsers and CAs do ("straße" stays distinct
        # from "strasse", unlike Python's built-in IDNA 2003 codec).
        return prefix + idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{name!r} is not a valid internationalized domain name") from exc


def make_csr(key_pem: str | bytes, names: list[str]) -> bytes:
    """A PEM CSR for `names` (all in the SAN, the first also as CN when it fits in 64 chars).

    Names are converted with `to_idna` first. Raises ValueError for an empty list.
    """
    if not names:
        raise ValueError("a certificate needs at least one name")
    wire = [to_idna(n) for n in names]
    wire = list(dict.fromkeys(wire))  # keep order, drop duplicates
    key = load_private_key(key_pem)
    subject = (
        [x509.NameAttribute(NameOID.COMMON_NAME, wire[0])] if len(wire[0]) <= _MAX_CN_LENGTH else []
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(subject))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in wire]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def load_certificate(cert_pem: str | bytes) -> x509.Certificate:
    """The first certificate in a PEM text."""
    data = cert_pem.encode("ascii") if isinstance(cert_pem, str) else cert_pem
    return x509.load_pem_x509_certificate(data)


def key_matches_certificate(key_pem: str | bytes, cert_pem: str | bytes) -> bool:
    """Whether the private key belongs to the (first) certificate in `cert_pem`."""
    key = load_private_key(key_pem)
    cert_public = load_certificate(cert_pem).public_key()
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return bool(key.public_key().public_bytes(enc, fmt) == cert_public.public_bytes(enc, fmt))


@dataclass(frozen=True)
class CertificateFacts:
    """What the pages and the renewal logic need to know about a certificate."""

    names: tuple[str, ...]  # DNS names of the SAN, in certificate order
    common_name: str
    issuer_common_name: str
    issuer_organization: str
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime  # aware, UTC
    serial_hex: str  # lower case, no leading zeros (what Pebble's and crt.sh's URLs take)
    fingerprint_sha256: str  # "AA:BB:..."
    key_type: str
    is_self_signed: bool

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return ""
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def certificate_facts(cert_pem: str | bytes) -> CertificateFacts:
    """Facts of the (first) certificate in `cert_pem`."""
    cert = load_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CertificateFacts(
        names=names,
        common_name=_attribute(cert.subject, NameOID.COMMON_NAME),
        issuer_common_name=_attribute(cert.issuer, NameOID.COMMON_NAME),
        issuer_organization=_attribute(cert.issuer, NameOID.ORGANIZATION_NAME),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial_hex=format(cert.serial_number, "x"),
        fingerprint_sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        key_type=_public_key_type(cert.public_key()),
        is_self_signed=_is_self_signed(cert),
    )


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


_PEM_END = "-----END CERTIFICATE-----"


def split_pem_certificates(pem: str) -> list[str]:
    """Each certificate block of a PEM text, normalised to end in a newline."""
    blocks = []
    for part in pem.split(_PEM_END):
        start = part.find("-----BEGIN CERTIFICATE-----")
        if start != -1:
            blocks.append(part[start:].strip() + "\n" + _PEM_END + "\n")
    return blocks


def split_fullchain(fullchain_pem: str) -> tuple[str, str]:
    """(leaf, chain) of a full chain PEM; the chain is every certificate after the first.

    Raises ValueError when there is no certificate at all.
    """
    blocks = split_pem_certificates(fullchain_pem)
    if not blocks:
        raise ValueError("no certificate found in the PEM text")
    return blocks[0], "".join(blocks[1:])
