"""One user's renewals, decided and done as that user (in a worker; see user_jobs.py).

For each certificate in the user's record: renew it when less than `renewal_fraction` of its
lifetime is left, or when its CA's renewal information (ARI, RFC 9773) says so; where the CA
offers ARI, its suggested window decides alone, earlier or later than the lifetime rule. Same
key, same names minus the names the user no longer owns, same CA, challenge method and preferred
chain as the certificate was issued with (the record remembers them). Reinstall the
saved one when it went missing from its vhost but is still good; leave it alone, marked
`replaced`, when someone else's certificate now sits on the vhost; stop when none of its names
belong to the account any more. One vhost failing never stops the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .acme_ari import ari_cert_id, remember_window, remembered_choice, remembered_recheck
from .acme_client import Binder
from .certificates import host_for, renewal_due
from .challenges import DNS01
from .config import Settings
from .cpanel.models import InstalledHost, Vhost
from .cpanel.uapi import UserAPI
from .errors import AcmeError, ChallengeFailed, Error
from .issuance import Issuer, Progress
from .issue_plan import AUTO, OrderPlan
from .names import wildcard_base
from .record_format import STATE_INSTALLED, STATE_REPLACED, CertificateEntry, JSONValue
from .store import RecordStore, RecordTxn

RENEWED = "renewed"
REINSTALLED = "reinstalled"
NOT_DUE = "not_due"
REPLACED = "replaced"
NAMES_GONE = "names_gone"
FAILED = "failed"


@dataclass(frozen=True)
class RenewalOutcome:
    vhost: str
    action: str
    names: tuple[str, ...] = ()
    not_after: int = 0
    error: str = ""
    error_kind: str = ""
    # When the CA's renewal information (ARI) wants a not-yet-due certificate renewed: root
    # plans a visit for then (it cannot read the record itself).
    renew_at: int = 0
    # The certificate's ARI id and when to ask its CA again: root asks meanwhile (ari_watch.py),
    # so a window the CA moves earlier (a revocation ahead) is acted on within a cycle.
    ari_id: str = ""
    ari_recheck: int = 0
    # How the names were checked, when known ("http-01", "dns-01"): the failure mail's advice.
    challenge: str = ""

    def summary(self) -> dict[str, JSONValue]:
        return {
            "vhost": self.vhost,
            "action": self.action,
            "names": list[JSONValue](self.names),
            "not_after": self.not_after,
            "error": self.error,
            "error_kind": self.error_kind,
            "renew_at": self.renew_at,
            "ari_id": self.ari_id,
            "ari_recheck": self.ari_recheck,
            "challenge": self.challenge,
        }


def _is_ours(host: InstalledHost | None, entry: CertificateEntry) -> bool:
    if host is None:
        return False
    if entry.cert_id and host.certificate.id == entry.cert_id:
        return True
    return "".join(host.certificate_pem.split()) == "".join(entry.cert_pem.split())


def _owned_names(entry: CertificateEntry, vhosts: list[Vhost]) -> tuple[Vhost | None, list[str]]:
    vhost = next((v for v in vhosts if v.domain == entry.vhost), None)
    if vhost is None:
        return None, []
    owned = {n.lower() for n in vhost.names} | {vhost.domain.lower()}
    # A wildcard stays while the user still owns its base name.
    return vhost, [n for n in entry.names if wildcard_base(n.lower()) in owned]


def ari_renewal_time(
    issuer: Issuer, txn: RecordTxn, entry: CertificateEntry, now: float
) -> int | None:
    """When the CA wants this certificate renewed (RFC 9773 §4.2), or None when its CA offers
    no renewal information or cannot say now (the lifetime rule decides then). The moment
    chosen inside the window is kept in the entry until the CA's Retry-After has passed."""
    if not entry.cert_pem or entry.not_after <= now:
        return None  # §4.3: an expired certificate is renewed, never asked about
    chosen = remembered_choice(entry.extras, now)
    if chosen is not None:
        return chosen
    directory = entry.directory or issuer.settings.acme_directory
    try:
        session = issuer.session(txn, directory, account=False)
        window = session.renewal_window(ari_cert_id(entry.cert_pem), now)
    except (AcmeError, ValueError):
        return None
    if window is None:
        return None
    chosen = remember_window(entry.extras, window)
    txn.save()
    return chosen


def _watched_by_root(entry: CertificateEntry, settings: Settings) -> tuple[str, int]:
    """(ARI id, when to ask again) for root to watch: only for the server's own CA, the one
    root asks (a user's record must not send root to another URL)."""
    recheck = remembered_recheck(entry.extras)
    if (entry.directory or settings.acme_directory) != settings.acme_directory or recheck is None:
        return "", 0
    try:
        return ari_cert_id(entry.cert_pem), recheck
    except ValueError:
        return "", 0


# ChallengeFailed kinds that say how the names were being checked (dns_challenge.py,
# dns_wait.py, selfcheck.py, challenges.py).
_DNS_KINDS = ("dns-zone", "dns-propagation")
_HTTP_KINDS = ("selfcheck", "webroot")


def _method_that_failed(entry: CertificateEntry, exc: Error) -> str:
    """How the failed renewal checked the names, when that is known: the certificate's own
    dns-01, or what the failure says; "" when the CA refused an automatic choice."""
    if entry.challenge_method == DNS01:
        return DNS01
    cause = exc.__cause__
    if isinstance(cause, ChallengeFailed) and cause.kind in _DNS_KINDS:
        return ""  # HTTP failed, and DNS was tried too (order_attempts.py): both advices
    kind = exc.kind if isinstance(exc, ChallengeFailed) else ""
    if kind in _DNS_KINDS:
        return DNS01
    if kind in _HTTP_KINDS:
        return "http-01"
    return ""


def renewal_plan(entry: CertificateEntry, settings: Settings) -> OrderPlan:
    """Order the renewal as the certificate was ordered (CA, method, chain)."""
    return OrderPlan(
        directory=entry.directory or settings.acme_directory,
        challenge=DNS01 if entry.challenge_method == DNS01 else AUTO,
        preferred_chain=entry.preferred_chain,
    )


def renew_user(
    api: UserAPI,
    store: RecordStore,
    settings: Settings,
    *,
    contact_email: str | None = None,
    force: bool = False,
    only_vhost: str | None = None,
    now: float | None = None,
    progress: Progress | None = None,
    binder: Binder | None = None,
) -> list[RenewalOutcome]:
    """Renew what is due among this user's plugin certificates; one outcome per certificate.

    Holds the user's lock throughout (a click on the cPanel page waits for it)."""
    when = time.time() if now is None else now
    issuer = Issuer(
        api, store, settings, contact_email=contact_email, progress=progress, binder=binder
    )
    vhosts = api.domains_data()
    hosts = api.installed_hosts()
    outcomes: list[RenewalOutcome] = []
    with store.locked() as txn:
        for key in sorted(txn.record.certificates):
            entry = txn.record.certificates[key]
            if only_vhost is not None and key != only_vhost:
                continue
            vhost, names = _owned_names(entry, vhosts)
            if vhost is None or not names:
                outcomes.append(RenewalOutcome(key, NAMES_GONE, tuple(entry.names)))
                continue
            host = host_for(vhost, hosts)
            ours = _is_ours(host, entry)
            foreign = host is not None and not ours and not host.certificate.is_self_signed
            # Even a forced renewal leaves another provider's certificate alone: the site owner
            # takes the vhost back with Issue on the cPanel page, never a server-wide action.
            if foreign:
                if entry.state != STATE_REPLACED:
                    entry.state = STATE_REPLACED
                    txn.save()
                outcomes.append(RenewalOutcome(key, REPLACED, tuple(names), entry.not_after))
                continue
            ari_time = None if force else ari_renewal_time(issuer, txn, entry, when)
            due = force or (
                ari_time <= when
                if ari_time is not None
                else renewal_due(
                    entry.not_before,
                    entry.not_after,
                    when,
                    settings.renewal_fraction,
                    days=settings.renewal_days,
                )
            )
            try:
                if not due and ours and entry.state == STATE_INSTALLED:
                    ari_id, recheck = _watched_by_root(entry, settings) if ari_time else ("", 0)
                    outcomes.append(
                        RenewalOutcome(
                            key,
                            NOT_DUE,
                            tuple(names),
                            entry.not_after,
                            renew_at=ari_time or 0,
                            ari_id=ari_id,
                            ari_recheck=recheck,
                        )
                    )
                    continue
                if not due:
                    # Still good but missing from its vhost (or never installed): put it back.
                    result = issuer.install(txn, entry, reused=True)
                    outcomes.append(
                        RenewalOutcome(key, REINSTALLED, tuple(result.names), result.not_after)
                    )
                    continue
                kind = entry.key_type or settings.default_key_type
                plan = renewal_plan(entry, settings)
                fresh = issuer.order(txn, vhost, names, kind, key_pem=entry.key_pem, plan=plan)
                result = issuer.install(txn, fresh, reused=False)
                outcomes.append(RenewalOutcome(key, RENEWED, tuple(result.names), result.not_after))
            except Error as exc:
                outcomes.append(
                    RenewalOutcome(
                        key,
                        FAILED,
                        tuple(names),
                        entry.not_after,
                        str(exc),
                        type(exc).__name__,
                        challenge=_method_that_failed(entry, exc),
                    )
                )
        txn.record.last_renewal_check = int(when)
        txn.save()
    return outcomes
