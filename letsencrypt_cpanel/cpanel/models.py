"""Typed results of the cPanel and WHM calls the plugin makes (frozen dataclasses, no I/O).

Certificates, keys, tokens and session URLs are kept out of `repr` so a logged object never
carries one. The models a whole server's listing is made of (`Account`, `SslVhost` and its
`CertificateFacts`) have slots: 20,000 vhosts without a `__dict__` each (the daemon's peak
memory, bench/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

VhostKind = Literal["main", "addon", "sub"]


@dataclass(frozen=True)
class Vhost:
    """One web vhost of a cPanel user (DomainInfo::domains_data / single_domain_data).

    `domain` is the name `SSL::install_ssl domain=` takes (the main domain, the addon's name, or
    the subdomain); `servername` is Apache's (an addon's backing subdomain); `names` is every name
    the vhost answers to that the user owns, lowercase, deduplicated, `domain` first.
    """

    domain: str
    servername: str
    kind: VhostKind
    docroot: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class DomainList:
    """DomainInfo::list_domains."""

    main_domain: str
    addon_domains: tuple[str, ...]
    parked_domains: tuple[str, ...]
    sub_domains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What cPanel says about a certificate (installed_hosts `certificate`, fetch_ssl_vhosts
    `crt`, list_certs entries, service `certificate_info`). Times are epoch seconds."""

    id: str
    names: tuple[str, ...]
    subject_cn: str
    issuer_cn: str
    issuer_org: str
    not_before: int
    not_after: int
    is_self_signed: bool
    # "rsa:2048", "ecdsa:p-256", ... (the plugin's names; "" when cPanel did not say).
    key_type: str = ""


@dataclass(frozen=True)
class InstalledHost:
    """One SSL vhost of the user (SSL::installed_hosts)."""

    servername: str
    docroot: str
    domains: tuple[str, ...]
    fqdns: tuple[str, ...]
    certificate: CertificateFacts
    certificate_pem: str = field(repr=False)


@dataclass(frozen=True)
class InstallResult:
    """SSL::install_ssl. `recovered` is True when cPanel reported an "unknown error" but the
    certificate was installed all the same (cpanel-api.md §1.6)."""

    cert_id: str
    key_id: str
    domain: str
    message: str
    working_domains: tuple[str, ...] = ()
    warning_domains: tuple[str, ...] = ()
    action: str = ""
    recovered: bool = False


@dataclass(frozen=True)
class StoredCert:
    """A certificate in the user's SSL storage (SSL::list_certs)."""

    id: str
    friendly_name: str
    names: tuple[str, ...]
    subject_cn: str
    issuer_cn: str
    issuer_org: str
    not_before: int
    not_after: int
    is_self_signed: bool
    created: int


@dataclass(frozen=True)
class StoredKey:
    """A key in the user's SSL storage (SSL::list_keys); the key itself is never fetched."""

    id: str
    friendly_name: str
    created: int
    key_algorithm: str
    modulus_length: int


@dataclass(frozen=True)
class ZoneLine:
    """One line of a DNS zone (DNS::parse_zone), base64 fields decoded.

    `name` is the owner as written (relative to the zone unless it ends in a dot); `data` the
    record's rdata chunks; `text` the text of a control or comment line.
    """

    line_index: int
    type: str
    name: str = ""
    ttl: int = 0
    record_type: str = ""
    data: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class NewRecord:
    """A record for DNS::mass_edit_zone `add` (e.g. a dns-01 TXT record)."""

    dname: str
    ttl: int
    record_type: str
    data: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Account:
    """One cPanel account as WHM lists it (listaccts / accountsummary)."""

    user: str
    domain: str
    email: str
    owner: str
    suspended: bool
    uid: int
    plan: str = ""
    ip: str = ""


@dataclass(frozen=True)
class UserSession:
    """A cPanel session WHM made for a user (create_user_session). The URL, the session and
    the security token are secrets and stay out of `repr`."""

    user: str
    service: str
    url: str = field(repr=False)
    cp_security_token: str = field(repr=False)
    session: str = field(repr=False)
    expires: int = 0


@dataclass(frozen=True, slots=True)
class SslVhost:
    """One SSL vhost on the server (WHM fetch_ssl_vhosts)."""

    servername: str
    user: str
    domains: tuple[str, ...]
    docroot: str
    type: str
    certificate: CertificateFacts | None


@dataclass(frozen=True)
class DomainInfo:
    """One domain of WHM get_domain_info (cpanel-api.md §3), from /etc/userdatadomains."""

    domain: str
    user: str
    owner: str
    type: str  # main, sub, addon, parked
    parent: str
    docroot: str


@dataclass(frozen=True)
class AutosslProvider:
    """One cPanel AutoSSL provider (WHM get_autossl_providers, cpanel-api.md §3)."""

    module_name: str
    display_name: str
    enabled: bool


@dataclass(frozen=True)
class ServiceCert:
    """A service certificate (WHM fetch_service_ssl_components); the key is never kept."""

    service: str
    certificate_pem: str = field(repr=False)
    cabundle_pem: str = field(repr=False)
    certificate: CertificateFacts | None = None


def soa_serial(lines: list[ZoneLine]) -> int:
    """The zone's serial: the SOA record's third rdata element (cpanel-api.md §2 DNS::parse_zone),
    0 when there is no SOA."""
    for line in lines:
        if line.type == "record" and line.record_type.upper() == "SOA" and len(line.data) >= 3:
            try:
                return int(line.data[2])
            except ValueError:
                return 0
    return 0
