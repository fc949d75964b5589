"""Pinned TLS: the certificate alone is kept, and it is the only trust anchor."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.cpanel.tls import (
    PinnedTLS,
    extract_certificate,
    is_verification_failure,
    load_pinned_tls,
)
from letsencrypt_cpanel.errors import ConfigError

from .certs import self_signed


def test_certificate_extracted_from_key_and_cert_file() -> None:
    cert, key = self_signed()
    assert extract_certificate(key + cert) == cert
    pinned = PinnedTLS.from_pem(cert + key)
    assert "PRIVATE" not in pinned.cert_pem
    assert "BEGIN" not in repr(pinned)


def test_no_certificate_is_a_config_error() -> None:
    _, key = self_signed()
    with pytest.raises(ConfigError):
        extract_certificate(key)
    with pytest.raises(ConfigError):
        extract_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_context_trusts_only_the_pin() -> None:
    cert, _ = self_signed()
    context = PinnedTLS.from_pem(cert).ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert context.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    assert context.cert_store_stats()["x509"] == 1


def test_root_reads_the_service_pem_and_rereads_on_change(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    pem_file = settings.cpanel_service_pem
    pem_file.parent.mkdir(parents=True)
    cert, key = self_signed()
    pem_file.write_text(key + cert)
    pinned = load_pinned_tls(settings)
    assert pinned.cert_pem == cert and pinned.source == pem_file
    assert pinned.reloaded() is None  # same certificate: the failure is real
    new_cert, new_key = self_signed()
    pem_file.write_text(new_key + new_cert)
    fresh = pinned.reloaded()
    assert fresh is not None and fresh.cert_pem == new_cert
    assert PinnedTLS.from_pem(cert).reloaded() is None  # workers cannot re-read


def test_missing_service_pem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_pinned_tls(Settings(root=tmp_path))


def test_verification_failure_detection() -> None:
    inner = ssl.SSLCertVerificationError(1, "certificate verify failed")
    outer = RuntimeError("wrapped")
    outer.__cause__ = inner
    assert is_verification_failure(outer)
    assert not is_verification_failure(RuntimeError("connection refused"))
