"""What a user's websites look like, certificate-wise: one status per virtual host.

Pure functions over what cPanel reports (`domains_data`, `installed_hosts`) and the user's record.
No ACME, no key generation, no network: the cPanel home page and `le-cp ssl list` use this on
every request, so it stays light.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .cpanel.models import InstalledHost, Vhost
from .errors import NameRefused
from .names import drop_covered_names, normalize_names, order_names, wildcard_base
from .record_format import STATE_REPLACED, CertificateEntry, Record

SECURED = "secured"
RENEWS_SOON = "renews_soon"
EXPIRED = "expired"
NOT_SECURED = "not_secured"
PARTIAL = "partial"
REPLACED = "replaced"

LABELS = {
    SECURED: "Secured until {date}",
    RENEWS_SOON: "Renews soon (expires {date})",
    EXPIRED: "Expired on {date}",
    NOT_SECURED: "Not secured",
    PARTIAL: "Some names not covered",
    REPLACED: "Replaced by another certificate",
}


@dataclass(frozen=True)
class VhostStatus:
    """One website and its certificate as the user should see it."""

    vhost: Vhost
    status: str
    label: str
    managed: bool  # the certificate on the vhost is the plugin's
    installed: InstalledHost | None
    entry: CertificateEntry | None
    # names_to_cover() that the installed certificate does not cover (all when none is valid)
    uncovered: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view (no keys, no PEMs)."""
        cert = self.installed.certificate if self.installed else None
        return {
            "vhost": self.vhost.domain,
            "servername": self.vhost.servername,
            "kind": self.vhost.kind,
            "names": list(self.vhost.names),
            "status": self.status,
            "label": self.label,
            "managed": self.managed,
            "uncovered": list(self.uncovered),
            "certificate": None
            if cert is None
            else {
                "names": list(cert.names),
                "issuer": cert.issuer_org or cert.issuer_cn,
                "not_after": cert.not_after,
                "self_signed": cert.is_self_signed,
                "id": cert.id,
            },
            "plugin": None
            if self.entry is None
            else {
                "names": list(self.entry.names),
                "not_after": self.entry.not_after,
                "state": self.entry.state,
                "key_type": self.entry.key_type,
                "last_error": self.entry.last_error,
                "challenge_method": self.entry.challenge_method,
                "directory": self.entry.directory,
                "preferred_chain": self.entry.preferred_chain,
            },
        }


def covers(cert_names: Sequence[str], name: str) -> bool:
    """True if a certificate for `cert_names` is valid for `name` (one-label wildcards)."""
    lowered = {n.lower() for n in cert_names}
    if name in lowered:
        return True
    parent = name.split(".", 1)[1] if "." in name else ""
    return bool(parent) and f"*.{parent}" in lowered


def renewal_due(
    not_before: int, not_after: int, now: float, fraction: float, *, days: int = 0
) -> bool:
    """Due when less than `fraction` of the lifetime is left (30 of 90 days for 1/3), or fewer
    than `days` days (the setting `renewal_days`, FleetSSL's countdown; 0 = off)."""
    lifetime = max(not_after - not_before, 1)
    return not_after - now < max(lifetime * fraction, days * 86400)


def host_for(vhost: Vhost, hosts: Sequence[InstalledHost]) -> InstalledHost | None:
    for host in hosts:
        if host.servername == vhost.servername or vhost.domain in host.domains:
            return host
    return None


def _date(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def vhost_status(
    vhost: Vhost,
    host: InstalledHost | None,
    entry: CertificateEntry | None,
    *,
    now: float,
    renewal_fraction: float,
) -> VhostStatus:
    cert = host.certificate if host else None
    managed = bool(
        cert is not None
        and entry is not None
        and ((entry.cert_id and cert.id == entry.cert_id) or _same_pem(host, entry))
    )
    valid = cert is not None and not cert.is_self_signed
    uncovered = tuple(
        n
        for n in names_to_cover(vhost, entry if managed else None)
        if cert is None or not valid or not covers(cert.names, n)
    )
    if cert is None or cert.is_self_signed:
        status, date = NOT_SECURED, 0
        if entry is not None and entry.state == STATE_REPLACED:
            status = REPLACED
    elif entry is not None and not managed:
        status, date = REPLACED, cert.not_after
    elif cert.not_after <= now:
        status, date = EXPIRED, cert.not_after
    else:
        date = cert.not_after
        if uncovered:
            status = PARTIAL
        elif renewal_due(cert.not_before, cert.not_after, now, renewal_fraction):
            status = RENEWS_SOON
        else:
            status = SECURED
    label = LABELS[status].format(date=_date(date) if date else "")
    return VhostStatus(vhost, status, label, managed, host, entry, uncovered)


def names_to_cover(vhost: Vhost, entry: CertificateEntry | None = None) -> tuple[str, ...]:
    """The names a certificate on `vhost` should cover, whoever issued it: the vhost's own names
    as cPanel lists them (its domain, servername, `www.`, parked and addon names), plus every name
    the plugin's certificate on it (`entry`) was issued for.

    Not the `mail.` name cPanel adds for each of the vhost's domains: mail clients' name, not the
    website's, which the Issue form does not tick either; cPanel's other service subdomains
    (`cpanel.`, `webmail.`, ...) are not in `vhost.names` at all. The certificate was meant to
    carry one of them when `entry` has it. Nor, for an addon domain, the subdomain cPanel made to
    hold it (`addon.main.test` and its `www.`): nobody visits the site by that name."""
    own = set(vhost.names)
    backing = (
        {vhost.servername, f"www.{vhost.servername}"} if vhost.servername != vhost.domain else set()
    )
    names = [
        n
        for n in vhost.names
        if n == vhost.domain
        or not (n in backing or (n.startswith("mail.") and n.split(".", 1)[1] in own))
    ]
    return tuple(dict.fromkeys([*names, *(entry.names if entry is not None else ())]))


def _same_pem(host: InstalledHost | None, entry: CertificateEntry) -> bool:
    if host is None or not entry.cert_pem or not host.certificate_pem:
        return False
    return "".join(host.certificate_pem.split()) == "".join(entry.cert_pem.split())


def statuses(
    vhosts: Sequence[Vhost],
    hosts: Sequence[InstalledHost],
    record: Record,
    *,
    now: float | None = None,
    renewal_fraction: float = 1 / 3,
) -> list[VhostStatus]:
    """One status per vhost, main domain first, then by name."""
    when = time.time() if now is None else now
    ordered = sorted(vhosts, key=lambda v: (v.kind != "main", v.domain))
    return [
        vhost_status(
            v,
            host_for(v, hosts),
            record.certificates.get(v.domain),
            now=when,
            renewal_fraction=renewal_fraction,
        )
        for v in ordered
    ]


def vhost_for_names(
    raw_names: Sequence[str], vhosts: Sequence[Vhost], limit: int, *, allow_wildcard: bool = False
) -> tuple[Vhost, list[str]]:
    """The one vhost that serves every requested name, and the names in certificate order.

    A wildcard `*.example.com` (when allowed) belongs to the vhost of `example.com`; names a
    wildcard of the same request covers are dropped (the CA refuses redundant names).
    Raises NameRefused naming the first name cPanel does not list for this user, or the first
    name that belongs to a different vhost than the others.
    """
    names = normalize_names(raw_names, limit=limit, allow_wildcard=allow_wildcard)
    owner: dict[str, Vhost] = {}
    for v in vhosts:
        for n in v.names:
            owner.setdefault(n.lower(), v)
        owner.setdefault(v.domain.lower(), v)
    chosen: Vhost | None = None
    for name in names:
        found = owner.get(wildcard_base(name))
        if found is None:
            raise NameRefused(name, "is not a domain of this cPanel account")
        if chosen is None:
            chosen = found
        elif found.domain != chosen.domain:
            raise NameRefused(
                name,
                f"belongs to the website {found.domain}, not {chosen.domain}: "
                "issue one certificate per website",
            )
    assert chosen is not None
    return chosen, order_names(drop_covered_names(names), chosen.domain)


def find_vhost(vhosts: Sequence[Vhost], wanted: str) -> Vhost:
    """The vhost named `wanted` (its domain or any of its names)."""
    key = normalize_names([wanted], limit=1)[0]
    for v in vhosts:
        if key == v.domain.lower() or key in (n.lower() for n in v.names):
            return v
    raise NameRefused(key, "is not a website of this cPanel account")
