"""How one certificate is to be ordered: its CA, challenge method, chain, profile; and the small
pure decisions around that (which solver, which chain, which revocation reason).

The choices are made once (on the cPanel page, by `le-cp ssl issue`) and remembered in the
record, so renewals order the same way: `CertificateEntry.directory`, `.challenge_method`,
`.preferred_chain`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .acme_ari import ari_cert_id
from .challenges import DNS01, HTTP01, ChallengeSolver, WebrootSolver
from .config import Settings
from .cpanel.models import Vhost
from .cpanel.uapi import UserAPI
from .dns_challenge import CpanelDnsSolver
from .dns_wait import TxtWatcher
from .errors import ConfigError, NameRefused
from .keys import certificate_facts, split_pem_certificates
from .names import is_wildcard
from .record_format import CertificateEntry
from .selfcheck import SelfCheck

CHALLENGE_METHODS = (HTTP01, DNS01)
AUTO = ""

# RFC 5280 §5.3.1 reason codes a subscriber may give (Let's Encrypt accepts exactly these).
REVOCATION_REASONS = {
    "unspecified": 0,
    "keyCompromise": 1,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
}


def revocation_code(reason: str) -> int:
    """The RFC 5280 code for a reason name (case-insensitive). Raises NameRefused."""
    for name, code in REVOCATION_REASONS.items():
        if name.lower() == reason.strip().lower():
            return code
    choices = ", ".join(REVOCATION_REASONS)
    raise NameRefused("", f"unknown revocation reason {reason!r}; choose one of {choices}")


@dataclass(frozen=True)
class OrderPlan:
    """Where and how to order. `challenge` AUTO: http-01, or dns-01 for wildcards and when the
    http-01 self-check fails for names whose zone is on this server."""

    directory: str
    challenge: str = AUTO
    preferred_chain: str = ""
    dry_run: bool = False
    # The names passed the same self-check moments ago (AutoSSL's plan fetched a test file from
    # the docroot for each): the order does not fetch them all again.
    prechecked: bool = False

    def __post_init__(self) -> None:
        if self.challenge not in (AUTO, *CHALLENGE_METHODS):
            raise NameRefused(
                "", f"unknown challenge method {self.challenge!r}; use http-01 or dns-01"
            )

    def first_method(self, names: Sequence[str]) -> str:
        """The method to try first: the one asked, else dns-01 if a wildcard needs it."""
        if any(is_wildcard(n) for n in names):
            if self.challenge == HTTP01:
                raise NameRefused(
                    next(n for n in names if is_wildcard(n)),
                    "is a wildcard, which only dns-01 can validate (RFC 8555 §7.1.3)",
                )
            return DNS01
        return self.challenge or HTTP01

    @property
    def may_fall_back(self) -> bool:
        return self.challenge == AUTO


# When dns-01 stands in for a failed http-01, how long to wait for the records to be served
# before giving up on it: a zone cPanel keeps for a domain whose DNS is elsewhere never serves.
FALLBACK_WAIT = 15.0


def build_solver(
    method: str,
    api: UserAPI,
    settings: Settings,
    vhost: Vhost,
    names: Sequence[str],
    *,
    fallback: bool = False,
    home: Path | None = None,
    prechecked: bool = False,
) -> ChallengeSolver:
    if method == DNS01:
        wait = settings.dns_propagation_timeout
        watcher = TxtWatcher(
            settings.resolvers, timeout=min(wait, FALLBACK_WAIT) if fallback else wait
        )
        return CpanelDnsSolver(api, watcher)
    check = SelfCheck(
        resolvers=settings.resolvers, http_port=settings.http_port, https_port=settings.https_port
    )
    return WebrootSolver(
        {name: Path(vhost.docroot) for name in names},
        self_check=None if prechecked else check,
        home=home,
    )


def zones_all_here(solver: CpanelDnsSolver, names: Sequence[str]) -> bool:
    """Whether every name's zone is one of this account's zones on this server, and the one
    the domain's delegation points at."""
    return all(solver.served_here(name) for name in names)


def chain_root_name(fullchain_pem: str) -> str:
    """The common name of the root a chain leads to: the issuer of its last certificate
    (the root itself is not sent, RFC 8555 §7.4.2)."""
    blocks = split_pem_certificates(fullchain_pem)
    return certificate_facts(blocks[-1]).issuer_common_name if blocks else ""


def choose_chain(
    default_fullchain: str, alternates: Sequence[str], preferred: str
) -> tuple[str, dict[str, str]]:
    """(the full chain to install, every chain's issuers by root name). The preferred root
    name picks among the CA's chains; none matching (or none asked) means the CA's default."""
    by_root: dict[str, str] = {}
    for fullchain in (default_fullchain, *alternates):
        by_root.setdefault(chain_root_name(fullchain), fullchain)
    chosen = default_fullchain
    if preferred:
        wanted = preferred.strip().lower()
        for root_name, fullchain in by_root.items():
            if root_name.lower() == wanted:
                chosen = fullchain
                break
    issuers = {name: "".join(split_pem_certificates(fc)[1:]) for name, fc in by_root.items()}
    return chosen, issuers


def replaces_id(previous: CertificateEntry | None, plan: OrderPlan, offers_ari: bool) -> str:
    """The ARI id of the certificate a new order replaces (RFC 9773 §5), when the CA offers
    renewal information and the previous certificate came from the same CA; else ""."""
    if previous is None or not previous.cert_pem or not offers_ari or plan.dry_run:
        return ""
    if previous.directory not in ("", plan.directory):
        return ""
    try:
        return ari_cert_id(previous.cert_pem)
    except ValueError:
        return ""


def choose_profile(wanted: str, offered: Mapping[str, str]) -> str:
    """The profile to ask for (draft-aaron-acme-profiles): the admin's choice when the CA lists
    it; none when either is empty. Raises ConfigError when the CA lists others only."""
    if not wanted or not offered:
        return ""
    if wanted not in offered:
        raise ConfigError(
            f"the certificate authority offers the profiles {', '.join(offered)}, not "
            f"{wanted!r}: change acme_profile (le-cp config set acme_profile NAME)"
        )
    return wanted
