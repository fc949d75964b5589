"""Certificate and key facts as cPanel reports them, and cPanel's SSL storage ids.

The ids follow cpanel-api.md §4 "ID formats" (S1 Cpanel/SSLStorage/Utils.pm); the fact fields follow
§2 SSL::installed_hosts / list_certs / list_keys.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import pickle
import re
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PEM_CERT_RE = re.compile(
    r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*?-----END CERTIFICATE-----", re.S
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# OpenSSL's short names for the curves cPanel offers (SSL::generate_key keytype values).
CURVE_NAMES = {"secp256r1": "prime256v1", "secp384r1": "secp384r1"}


class BadPEM(ValueError):
    """The text is not a usable certificate or key; str() is the parser's complaint."""


def load_cert(pem: str) -> x509.Certificate:
    blocks = split_certs(pem)
    if not blocks:
        raise BadPEM("No certificate (-----BEGIN CERTIFICATE-----) found in the input.")
    try:
        return x509.load_pem_x509_certificate(blocks[0].encode("ascii"))
    except ValueError as exc:
        raise BadPEM(str(exc)) from exc


def load_key(pem: str) -> PrivateKey:
    try:
        # Without cryptography's RSA prime checks (20-90 ms a key, twice an install_ssl): a
        # stand-in's install must not cost more than the plugin's whole issue (bench/).
        key = serialization.load_pem_private_key(
            pem.strip().encode("ascii"), password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise BadPEM(str(exc)) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise BadPEM("Only RSA and ECDSA keys are supported.")
    return key


def split_certs(text: str) -> list[str]:
    """Every PEM certificate block in `text`, normalized to end with a newline."""
    return [m.group(0).strip() + "\n" for m in PEM_CERT_RE.finditer(text)]


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")


def same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return cert.public_key().public_bytes(enc, fmt) == key.public_key().public_bytes(enc, fmt)


def _modulus_hex(pub: rsa.RSAPublicKey) -> str:
    return format(pub.public_numbers().n, "x")


def _ecdsa_public_hex(pub: ec.EllipticCurvePublicKey) -> str:
    point = pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point.hex()


def public_key_facts(pub: Any) -> dict[str, Any]:
    if isinstance(pub, rsa.RSAPublicKey):
        return {
            "key_algorithm": "rsaEncryption",
            "modulus": _modulus_hex(pub),
            "modulus_length": pub.key_size,
            "public_exponent": format(pub.public_numbers().e, "x"),
            "ecdsa_curve_name": None,
            "ecdsa_public": None,
        }
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return {
            "key_algorithm": "id-ecPublicKey",
            "modulus": None,
            "modulus_length": None,
            "ecdsa_curve_name": CURVE_NAMES.get(pub.curve.name, pub.curve.name),
            "ecdsa_public": _ecdsa_public_hex(pub),
        }
    raise BadPEM("Only RSA and ECDSA keys are supported.")


def key_id(pub: Any) -> str:
    """cPanel's key id: RSA `<5 hex>_<5 hex>_<md5(modulus)>`, ECDSA `ec-<10 of x>_<md5>`."""
    if isinstance(pub, rsa.RSAPublicKey):
        mod = _modulus_hex(pub)
        return f"{mod[:5]}_{mod[-5:]}_{hashlib.md5(mod.encode()).hexdigest()}"
    point = _ecdsa_public_hex(pub)[2:]
    half = len(point) // 2
    pub_x, pub_y = point[:half], point[half:]
    oid = {"secp256r1": "1.2.840.10045.3.1.7", "secp384r1": "1.3.132.0.34"}.get(pub.curve.name, "")
    return f"ec-{pub_x[:10]}_{hashlib.md5(f'{pub_x}_{pub_y}_{oid}'.encode()).hexdigest()}"


def _cn_for_filesystem(cn: str) -> str:
    cn = re.sub(r"^\*", "_wildcard_", cn)
    return re.sub(r"[^_a-zA-Z0-9]+", "_", cn)


def cert_id(cert: x509.Certificate) -> str:
    """cPanel's certificate id (§4): CN, key fragment, not_after epoch, md5 of the PEM."""
    cn = _cn_for_filesystem(common_name(cert.subject) or "")  # "" without a CN, as S1 does
    not_after = int(_not_after(cert).timestamp())
    digest = hashlib.md5(cert_pem(cert).strip().encode()).hexdigest()
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        mod = _modulus_hex(pub)
        return f"{cn}_{mod[:5]}_{mod[-5:]}_{not_after}_{digest}"
    return f"ec-{cn}_{_ecdsa_public_hex(pub)[2:12]}_{not_after}_{digest}"  # type: ignore[arg-type]


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    return str(attrs[0].value) if attrs else None


def common_name(name: x509.Name) -> str | None:
    return _attr(name, NameOID.COMMON_NAME)


def _name_text(name: x509.Name) -> str:
    """cPanel's `*_text` layout: attribute name and value on alternating lines."""
    lines: list[str] = []
    for attr in name:
        lines += [attr.oid._name, str(attr.value)]
    return "\n".join(lines) + "\n" if lines else ""


def _not_after(cert: x509.Certificate) -> datetime.datetime:
    return cert.not_valid_after_utc


def cert_domains(cert: x509.Certificate) -> list[str]:
    """The DNS names a certificate covers, subject CN first (as cPanel lists them)."""
    names: list[str] = []
    cn = common_name(cert.subject)
    if cn:
        names.append(cn.lower())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names += [n.lower() for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        pass
    return list(dict.fromkeys(names))


def covers(cert_names: list[str], name: str) -> bool:
    name = name.lower()
    for pattern in cert_names:
        if pattern == name:
            return True
        if (
            pattern.startswith("*.")
            and name.count(".") >= 2
            and name.split(".", 1)[1] == pattern[2:]
        ):
            return True
    return False


def cert_facts(cert: x509.Certificate) -> dict[str, Any]:
    """The certificate object of installed_hosts / list_certs (integers, as S2 documents)."""
    self_signed = cert.issuer == cert.subject
    facts: dict[str, Any] = {
        "id": cert_id(cert),
        "domains": cert_domains(cert),
        "subject.commonName": common_name(cert.subject),
        "subject_text": _name_text(cert.subject),
        "issuer.commonName": common_name(cert.issuer),
        "issuer.organizationName": _attr(cert.issuer, NameOID.ORGANIZATION_NAME),
        "issuer_text": _name_text(cert.issuer),
        "not_before": int(cert.not_valid_before_utc.timestamp()),
        "not_after": int(_not_after(cert).timestamp()),
        "serial": format(cert.serial_number, "x"),
        "is_self_signed": 1 if self_signed else 0,
        "is_autossl": 0,
        "validation_type": None if self_signed else "dv",
        "signature_algorithm": cert.signature_algorithm_oid._name,
    }
    facts.update(public_key_facts(cert.public_key()))
    return facts


@functools.lru_cache(maxsize=50_000)
def _facts_pickle(pem: str) -> bytes:
    return pickle.dumps(cert_facts(load_cert(pem)))


def facts_for_pem(pem: str) -> dict[str, Any]:
    """cert_facts of a PEM certificate (a fresh copy), parsed once per distinct PEM: WHM's
    fetch_ssl_vhosts reports every installed certificate of the server (bench/)."""
    facts: dict[str, Any] = pickle.loads(_facts_pickle(pem))  # noqa: S301 - our own pickle
    return facts


def make_self_signed(
    common: str,
    dns_names: Sequence[str],
    ips: Sequence[str] = (),
    days: int = 365,
    key: PrivateKey | None = None,
) -> tuple[str, str]:
    """(certificate PEM, key PEM) of a self-signed certificate; a fresh RSA 2048 key by default."""
    if key is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert_pem(cert), key_pem(key)
