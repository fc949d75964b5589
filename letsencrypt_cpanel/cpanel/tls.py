"""Pinned TLS to cPanel on loopback: cPanel's own service certificate is the only trust anchor.

Why (ARCHITECTURE.md "How cPanel is called"): a local user who binds 2087 while cpsrvd restarts
must not collect root's token, and `verify=False` would let them. Hostnames are not checked (the
certificate names the server, we connect to 127.0.0.1), and partial chains are allowed so the
pinned certificate itself is the anchor even when it is not a CA.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from ..config import Settings
from ..errors import ConfigError

_CERT_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s.+?-----END CERTIFICATE-----", flags=re.DOTALL
)


def extract_certificate(pem_text: str) -> str:
    """The first certificate of a PEM text that may also hold a private key (cPanel's
    `cpanel.pem` holds both, cpanel-api.md §4 "Service certs"). The key is never parsed or
    returned. Raises `ConfigError` when there is no valid certificate."""
    match = _CERT_BLOCK.search(pem_text)
    if match is None:
        raise ConfigError("the cPanel service certificate file holds no certificate")
    cert_pem = match.group(0).strip() + "\n"
    try:
        x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    except ValueError as exc:
        raise ConfigError("the cPanel service certificate is not a valid certificate") from exc
    return cert_pem


@dataclass(frozen=True)
class PinnedTLS:
    """One certificate (PEM, no key) trusted for connections to cPanel on loopback.

    `source` is the root-only file it came from, so that on a verification failure root can
    re-read it once (cPanel may have renewed it); workers get `from_pem` and no source.
    """

    cert_pem: str = field(repr=False)
    source: Path | None = None

    @classmethod
    def from_pem(cls, pem: str) -> PinnedTLS:
        """Pin the first certificate of `pem` (any key in the text is ignored, not kept)."""
        return cls(extract_certificate(pem))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only the pinned certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False  # we dial 127.0.0.1; the pin is the identity check
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=self.cert_pem)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        # Python 3.13 turns on strict RFC 5280 checks by default; cPanel's self-signed service
        # certificate lacks extensions they demand, and the pin already fixes the identity.
        context.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
        return context

    def reloaded(self) -> PinnedTLS | None:
        """The pin read again from `source`, if it changed; None when there is no source or the
        certificate is the same (then the failure is real)."""
        if self.source is None:
            return None
        fresh = read_pinned_file(self.source)
        if fresh.cert_pem == self.cert_pem:
            return None
        return fresh


def read_pinned_file(path: Path) -> PinnedTLS:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(
            f"cannot read cPanel's service certificate {path}: {exc.strerror}"
        ) from exc
    cert_pem = extract_certificate(text)
    del text  # the file also holds cPanel's private key: keep no reference to it
    return PinnedTLS(cert_pem, source=path)


def load_pinned_tls(settings: Settings) -> PinnedTLS:
    """Root's pin: the certificate of `settings.cpanel_service_pem` (root-only, key + cert)."""
    return read_pinned_file(settings.cpanel_service_pem)


def is_verification_failure(exc: BaseException) -> bool:
    """Whether an exception (or one it wraps) is a TLS certificate verification failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException) and is_verification_failure(arg):
                return True
        current = current.__cause__ or current.__context__
    return False
