"""FleetSSL's record (prior-art.md §4.7) read into today's `Record`, keys and certificates kept.

FleetSSL's plugin kept the same file, `~/.cpanel/nvdata/letsencrypt-cpanel`, as one JSON object
with no `version`:

    {"accountkey": PEM, "last_renewal_check": unix, "disable_mail": bool,
     "cert_reuses": {target vhost: source vhost},
     "certs": {vhost root domain: {"domain", "alt_names", "url", "key", "cert", "issuer",
               "key_id", "cert_id", "cert_expiry", "challenge_method",
               "alternate_chains", "preferred_issuer"}}}

It was written by Go: a nil slice or map is `null`, so every field may be null or missing.
The upgrade is written back by the store's next save (the same file, now with `version`).
PEM text is copied as-is, byte for byte: the installed certificate must keep matching cPanel's.
"""

from __future__ import annotations

import datetime as _dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .config import LETSENCRYPT_PRODUCTION
from .record_format import (
    STATE_INSTALLED,
    STATE_ISSUED,
    AcmeAccountEntry,
    CertificateEntry,
    JSONObject,
    JSONValue,
    Record,
    as_bool,
    as_int,
    as_list,
    as_object,
    as_str,
)

_TOP_FIELDS = {"accountkey", "last_renewal_check", "disable_mail", "certs"}
_CERT_FIELDS = {
    "domain",
    "alt_names",
    "url",
    "key",
    "cert",
    "issuer",
    "key_id",
    "cert_id",
    "cert_expiry",
    "challenge_method",
    "alternate_chains",
    "preferred_issuer",
}
_CURVES = {"secp256r1": "ecdsa:p-256", "secp384r1": "ecdsa:p-384"}


def upgrade_fleetssl_record(obj: JSONObject) -> Record:
    """Today's Record from FleetSSL's object. Raises `UnreadableRecord` on a wrong type.

    FleetSSL's account key had no directory: it was always Let's Encrypt production, so it is
    filed there; its account URL was never stored, so `url` is "" and the account is looked up
    (or registered) again with the same key. `cert_reuses` and unknown fields are kept verbatim.
    """
    accounts: dict[str, AcmeAccountEntry] = {}
    account_key = _opt_str(obj.get("accountkey"), "accountkey")
    if account_key:
        accounts[LETSENCRYPT_PRODUCTION] = AcmeAccountEntry(
            directory=LETSENCRYPT_PRODUCTION, key_pem=account_key
        )
    certs = obj.get("certs")
    certificates = {
        vhost: _certificate(vhost, value)
        for vhost, value in (as_object(certs, "certs") if certs is not None else {}).items()
    }
    disable_mail = obj.get("disable_mail")
    last_check = obj.get("last_renewal_check")
    return Record(
        accounts=accounts,
        certificates=certificates,
        disable_mail=as_bool(disable_mail, "disable_mail") if disable_mail is not None else False,
        last_renewal_check=as_int(last_check, "last_renewal_check")
        if last_check is not None
        else 0,
        extras={k: v for k, v in obj.items() if k not in _TOP_FIELDS},
        upgraded_from="fleetssl",
    )


def _certificate(vhost: str, value: JSONValue) -> CertificateEntry:
    where = f"certs {vhost}"
    obj = as_object(value, where)

    def text(name: str) -> str:
        return _opt_str(obj.get(name), f"{where}: {name}")

    # The vhost's root domain is the CN and first SAN; alt_names may repeat it.
    names: list[str] = []
    for name in [text("domain") or vhost, *_opt_str_list(obj.get("alt_names"), where)]:
        if name and name not in names:
            names.append(name)
    chains_value = obj.get("alternate_chains")
    chains = {
        cn: as_str(pem, f"{where}: alternate_chains")
        for cn, pem in (
            as_object(chains_value, f"{where}: alternate_chains") if chains_value else {}
        ).items()
    }
    expiry = obj.get("cert_expiry")
    cert_pem = text("cert")
    not_before, key_type = _certificate_facts(cert_pem)
    cert_id = text("cert_id")
    return CertificateEntry(
        vhost=vhost,
        names=names,
        key_pem=text("key"),
        key_type=key_type,
        cert_pem=cert_pem,
        chain_pem=text("issuer"),
        not_before=not_before,
        not_after=as_int(expiry, f"{where}: cert_expiry") if expiry is not None else 0,
        challenge_method=text("challenge_method") or "http-01",
        order_url=text("url"),
        directory=LETSENCRYPT_PRODUCTION,
        # FleetSSL stored cPanel's cert id once the certificate was installed.
        state=STATE_INSTALLED if cert_id else STATE_ISSUED,
        cert_id=cert_id,
        key_id=text("key_id"),
        issued_at=not_before,
        preferred_chain=text("preferred_issuer"),
        alternate_chains=chains,
        extras={k: v for k, v in obj.items() if k not in _CERT_FIELDS},
    )


def _certificate_facts(cert_pem: str) -> tuple[int, str]:
    """(not_before, key_type) read from the leaf; (0, "") when it cannot be parsed.

    A broken certificate is kept as it is (the user sees "Broken cert!" and can reissue); it
    does not make the whole record unreadable.
    """
    if not cert_pem:
        return 0, ""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("utf-8"))
    except ValueError:
        return 0, ""
    not_before = int(cert.not_valid_before_utc.replace(tzinfo=_dt.timezone.utc).timestamp())
    public_key = cert.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        return not_before, f"rsa:{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return not_before, _CURVES.get(public_key.curve.name, "")
    return not_before, ""


def _opt_str(value: JSONValue, where: str) -> str:
    return "" if value is None else as_str(value, where)


def _opt_str_list(value: JSONValue, where: str) -> list[str]:
    if value is None:
        return []
    return [as_str(v, f"{where}: alt_names") for v in as_list(value, f"{where}: alt_names")]
