"""Turn cPanel's decoded JSON into the typed results of `models`. Pure functions, no I/O.

Every lenient read goes through `quirks`; the section of cpanel-api.md each shape comes from is
named on the function.
"""

from __future__ import annotations

import base64
import binascii
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from .models import (
    Account,
    AutosslProvider,
    CertificateFacts,
    DomainInfo,
    InstalledHost,
    ServiceCert,
    SslVhost,
    StoredCert,
    StoredKey,
    Vhost,
    VhostKind,
    ZoneLine,
)
from .quirks import (
    as_bool,
    as_dict,
    as_int,
    as_str,
    as_str_list,
    common_name,
    dotted,
    is_proxy_subdomain,
)

_KINDS: dict[str, VhostKind] = {
    "main_domain": "main",
    "main": "main",
    "addon_domain": "addon",
    "addon": "addon",
    "sub_domain": "sub",
    "sub": "sub",
}


def _unique_lower(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for name in names:
        clean = _shared(name.strip().lower().rstrip("."))
        if clean:
            seen.setdefault(clean, None)
    return tuple(seen)


def _shared(text: str) -> str:
    """One copy of a string that recurs across a listing (a user, an issuer, a name that is
    both a vhost's and its certificate's): WHM's listing of a whole server is held at once, and
    each JSON value is a string of its own (the daemon's peak memory, bench/)."""
    return sys.intern(text)


def vhost_names(domain: str, servername: str, serveralias: Any) -> tuple[str, ...]:
    """Every name a vhost answers to that its user owns: the domain, its `www.`, the servername
    and the `serveralias` names (space-separated; parked and addon names live there, cpanel-api.md
    §4 userdata), minus cPanel's proxy subdomains (`cpanel.`, `webmail.`, ...)."""
    aliases = serveralias.split() if isinstance(serveralias, str) else as_str_list(serveralias)
    names = _unique_lower([domain, f"www.{domain}" if domain else "", servername, *aliases])
    own = [n for n in names if not n.startswith("*.")]
    return tuple(n for n in names if not is_proxy_subdomain(n, own))


def vhost(obj: Mapping[str, Any], kind: VhostKind | None = None) -> Vhost:
    """One userdata object of DomainInfo::domains_data / single_domain_data (cpanel-api.md §2):
    `domain` is the addon's name where `servername` is its backing subdomain."""
    servername = as_str(obj.get("servername"))
    domain = as_str(obj.get("domain")) or servername
    found = kind or _KINDS.get(as_str(obj.get("type")), "sub")
    return Vhost(
        domain=domain.lower(),
        servername=servername.lower(),
        kind=found,
        docroot=as_str(obj.get("documentroot")).rstrip("/") or as_str(obj.get("documentroot")),
        names=vhost_names(domain, servername, obj.get("serveralias")),
    )


def certificate_facts(obj: Any) -> CertificateFacts:
    """The certificate fields shared by installed_hosts, list_certs, fetch_ssl_vhosts and the
    service certificate calls; numbers may be strings and `subject.commonName` an object
    (cpanel-api.md §1.6)."""
    cert = as_dict(obj)
    return CertificateFacts(
        id=as_str(cert.get("id")),
        names=_unique_lower(as_str_list(cert.get("domains"))),
        subject_cn=_shared(common_name(dotted(cert, "subject", "commonName"))),
        issuer_cn=_shared(common_name(dotted(cert, "issuer", "commonName"))),
        issuer_org=_shared(as_str(dotted(cert, "issuer", "organizationName"))),
        not_before=as_int(cert.get("not_before")),
        not_after=as_int(cert.get("not_after")),
        is_self_signed=as_bool(cert.get("is_self_signed")),
        key_type=_shared(key_type(cert)),
    )


# cPanel names curves as OpenSSL does (fetch_ssl_vhosts `ecdsa_curve_name`).
_CURVES = {"prime256v1": "p-256", "secp256r1": "p-256", "secp384r1": "p-384"}


def key_type(cert: Mapping[str, Any]) -> str:
    """The certificate's key in the plugin's names ("rsa:2048", "ecdsa:p-256"), from
    `key_algorithm`/`encryption_algorithm`, `modulus_length` and `ecdsa_curve_name`
    (cpanel-api.md §3 fetch_ssl_vhosts); "" when cPanel did not say."""
    algorithm = as_str(cert.get("key_algorithm") or cert.get("encryption_algorithm")).lower()
    if algorithm.startswith("rsa"):
        bits = as_int(cert.get("modulus_length"))
        return f"rsa:{bits}" if bits else "rsa"
    if "ec" in algorithm:
        curve = as_str(cert.get("ecdsa_curve_name")).lower()
        return f"ecdsa:{_CURVES.get(curve, curve)}" if curve else "ecdsa"
    return ""


def installed_host(obj: Mapping[str, Any]) -> InstalledHost:
    """One entry of SSL::installed_hosts (cpanel-api.md §2)."""
    return InstalledHost(
        servername=as_str(obj.get("servername")).lower(),
        docroot=as_str(obj.get("docroot")),
        domains=_unique_lower(as_str_list(obj.get("domains"))),
        fqdns=_unique_lower(as_str_list(obj.get("fqdns"))),
        certificate=certificate_facts(obj.get("certificate")),
        certificate_pem=as_str(obj.get("certificate_text")),
    )


def stored_cert(obj: Mapping[str, Any]) -> StoredCert:
    """One entry of SSL::list_certs (cpanel-api.md §2)."""
    facts = certificate_facts(obj)
    return StoredCert(
        id=facts.id,
        friendly_name=as_str(obj.get("friendly_name")),
        names=facts.names,
        subject_cn=facts.subject_cn,
        issuer_cn=facts.issuer_cn,
        issuer_org=facts.issuer_org,
        not_before=facts.not_before,
        not_after=facts.not_after,
        is_self_signed=facts.is_self_signed,
        created=as_int(obj.get("created")),
    )


def stored_key(obj: Mapping[str, Any]) -> StoredKey:
    """One entry of SSL::list_keys (cpanel-api.md §2)."""
    return StoredKey(
        id=as_str(obj.get("id")),
        friendly_name=as_str(obj.get("friendly_name")),
        created=as_int(obj.get("created")),
        key_algorithm=as_str(obj.get("key_algorithm")),
        modulus_length=as_int(obj.get("modulus_length")),
    )


def _b64(value: Any) -> str:
    try:
        return base64.b64decode(as_str(value), validate=False).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def zone_line(obj: Mapping[str, Any]) -> ZoneLine:
    """One line of DNS::parse_zone with its base64 fields decoded (cpanel-api.md §2)."""
    return ZoneLine(
        line_index=as_int(obj.get("line_index")),
        type=as_str(obj.get("type")),
        name=_b64(obj.get("dname_b64")),
        ttl=as_int(obj.get("ttl")),
        record_type=as_str(obj.get("record_type")),
        data=tuple(_b64(v) for v in (obj.get("data_b64") or []) if isinstance(v, str)),
        text=_b64(obj.get("text_b64")),
    )


def account(obj: Mapping[str, Any]) -> Account:
    """One `acct[]` entry of WHM listaccts / accountsummary (cpanel-api.md §3)."""
    return Account(
        user=as_str(obj.get("user")),
        domain=as_str(obj.get("domain")).lower(),
        email=as_str(obj.get("email")),
        owner=as_str(obj.get("owner")),
        suspended=as_bool(obj.get("suspended")),
        uid=as_int(obj.get("uid"), -1),
        plan=as_str(obj.get("plan")),
        ip=as_str(obj.get("ip")),
    )


def ssl_vhost(obj: Mapping[str, Any]) -> SslVhost:
    """One `vhosts[]` entry of WHM fetch_ssl_vhosts (cpanel-api.md §3)."""
    crt = obj.get("crt")
    return SslVhost(
        servername=_shared(as_str(obj.get("servername")).lower()),
        user=_shared(as_str(obj.get("user"))),
        domains=_unique_lower(as_str_list(obj.get("domains"))),
        docroot=as_str(obj.get("docroot")),
        type=_shared(as_str(obj.get("type"))),
        certificate=certificate_facts(crt) if isinstance(crt, Mapping) else None,
    )


def service_cert(obj: Mapping[str, Any]) -> ServiceCert:
    """One `services[]` entry of fetch_service_ssl_components, or the data of
    install_service_ssl_certificate (cpanel-api.md §3). The `key` field is dropped on purpose."""
    info = obj.get("certificate_info")
    return ServiceCert(
        service=as_str(obj.get("service")),
        certificate_pem=as_str(obj.get("certificate")),
        cabundle_pem=as_str(obj.get("cabundle")),
        certificate=certificate_facts(info) if isinstance(info, Mapping) else None,
    )


def domain_info(obj: Mapping[str, Any]) -> DomainInfo:
    """One `domains[]` entry of WHM get_domain_info (cpanel-api.md §3)."""
    return DomainInfo(
        domain=as_str(obj.get("domain")).lower(),
        user=as_str(obj.get("user")),
        owner=as_str(obj.get("user_owner")),
        type=as_str(obj.get("domain_type")),
        parent=as_str(obj.get("parent_domain")).lower(),
        docroot=as_str(obj.get("docroot")),
    )


def autossl_provider(obj: Mapping[str, Any]) -> AutosslProvider:
    """One `payload[]` entry of WHM get_autossl_providers (cpanel-api.md §3)."""
    return AutosslProvider(
        module_name=as_str(obj.get("module_name")),
        display_name=as_str(obj.get("display_name")) or as_str(obj.get("module_name")),
        enabled=as_bool(obj.get("enabled")),
    )
