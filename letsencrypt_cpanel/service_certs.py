"""The service (hostname) certificate: cpsrvd, Exim, Dovecot and FTP secured by the plugin's CA.

For WHM's `gethostname` plus `hostcert_extra_names`: issued by http-01 from the hostname's
docroot (`hostcert_docroot`, Apache's default vhost, root's own folder, never a user's home) with
the same ACME code users get, on root's own account (service_cert_state.py), and installed with
`install_service_ssl_certificate` on every service `fetch_service_ssl_components` lists
(cpanel-api.md §3; the `*_apns` ones are Apple push certificates and are skipped, as FleetSSL
does). A service needs a new certificate when it has none, a self-signed one, one that misses a
wanted name, or one inside the renewal window; a saved certificate that is still good is
installed again rather than ordered again. Budgets (budgets.py) are reserved before the order.

After the install on `cpanel`, cpsrvd presents the new certificate, so the plugin's pinned
loopback TLS must follow it: the WHM client re-reads `cpanel.pem` on a mismatch
(`PinnedTLS.reloaded()`), and `run_once` proves that with one more WHM call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from .acme_client import AcmeAccount, connect
from .apache_restarts import Busy, exclusive
from .budgets import Attempt, Budgets, account_spend, budget_ip, order_spends
from .certificates import covers, renewal_due
from .challenges import WebrootSolver
from .config import Settings, load_secrets
from .cpanel.models import ServiceCert, Vhost
from .cpanel.whm import WhmAPI
from .errors import ChallengeFailed, Error, RateLimited, SelfCheckFailed
from .keys import certificate_facts, generate_private_key
from .mail_transport import MailError, build_transport
from .names import normalize_names, usable_email
from .selfcheck import SelfCheck
from .service_cert_state import (
    RootAccount,
    SavedCertificate,
    ServiceCertState,
    load_state,
    save_state,
)

log = logging.getLogger(__name__)

ROOT_ACCOUNT = "root"  # the budget key of root's own ACME account
BUDGET_VHOST = "(service certificate)"
FAILURE_MAIL_INTERVAL = 24 * 3600

NOT_DUE = "not_due"
ISSUED = "issued"
REINSTALLED = "reinstalled"
FAILED = "failed"
DEFERRED = "deferred"
DISABLED = "disabled"


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    names: tuple[str, ...]
    issuer: str
    not_after: int
    self_signed: bool
    problem: str  # "" when the service's certificate is good for the wanted names

    def summary(self) -> dict[str, object]:
        return {
            "service": self.service,
            "names": list(self.names),
            "issuer": self.issuer,
            "not_after": self.not_after,
            "self_signed": self.self_signed,
            "problem": self.problem,
        }


@dataclass
class HostcertOutcome:
    action: str
    names: list[str] = field(default_factory=list)
    not_after: int = 0
    installed_on: list[str] = field(default_factory=list)
    error: str = ""
    pin_followed: bool = False
    mailed: bool = False

    def summary(self) -> dict[str, object]:
        return {
            "action": self.action,
            "names": list(self.names),
            "not_after": self.not_after,
            "installed_on": list(self.installed_on),
            "error": self.error,
            "pin_followed": self.pin_followed,
        }


def wanted_names(settings: Settings, whm: WhmAPI) -> list[str]:
    """WHM's hostname first, then the extra names. Raises NameRefused/CpanelAPIError."""
    return normalize_names(
        [whm.gethostname(), *settings.hostcert_extra_names],
        limit=settings.max_names_per_certificate,
    )


def _services(whm: WhmAPI) -> list[ServiceCert]:
    return [s for s in whm.fetch_service_ssl_components() if not s.service.endswith("_apns")]


def _problem(service: ServiceCert, names: list[str], settings: Settings, now: float) -> str:
    cert = service.certificate
    if cert is None or not service.certificate_pem:
        return "no certificate"
    if cert.is_self_signed:
        return "self-signed"
    if cert.not_after <= now:
        return "expired"
    missing = [n for n in names if not covers(cert.names, n)]
    if missing:
        return f"does not cover {', '.join(missing)}"
    if renewal_due(
        cert.not_before, cert.not_after, now, settings.renewal_fraction, days=settings.renewal_days
    ):
        return "due for renewal"
    return ""


def service_statuses(settings: Settings, whm: WhmAPI, now: float) -> list[ServiceStatus]:
    """Each service's certificate and what is wrong with it (for `le-cp hostcert status`)."""
    names = wanted_names(settings, whm)
    out = []
    for s in _services(whm):
        cert = s.certificate
        out.append(
            ServiceStatus(
                s.service,
                cert.names if cert else (),
                (cert.issuer_org or cert.issuer_cn) if cert else "",
                cert.not_after if cert else 0,
                bool(cert and cert.is_self_signed),
                _problem(s, names, settings, now),
            )
        )
    return out


def _saved_usable(
    saved: SavedCertificate | None, names: list[str], s: Settings, now: float
) -> bool:
    if saved is None or sorted(saved.names) != sorted(names) or saved.directory != s.acme_directory:
        return False
    return not renewal_due(
        saved.not_before, saved.not_after, now, s.renewal_fraction, days=s.renewal_days
    )


def hostcert_docroot(settings: Settings) -> Path:
    """The hostname's docroot, made if missing. Root writes there, so it must be root's: a
    folder under /home* (users' homes on cPanel) is refused, whatever the setting says."""
    wanted = settings.hostcert_docroot
    if wanted.startswith("/home") or not wanted.startswith("/"):
        raise Error(f"hostcert_docroot {wanted} must be an absolute path of root's, not in /home")
    docroot = settings.path(wanted)
    docroot.mkdir(parents=True, exist_ok=True, mode=0o755)
    return docroot


def _precheck(settings: Settings, names: list[str]) -> None:
    """AutoSSL's pre-check for the service names: each must resolve to this server and serve a
    test file from the docroot, or nothing is ordered (the CA's failed validations are spared).
    Raises SelfCheckFailed naming every failing name."""
    from .autossl_plan import precheck, server_addresses  # AutoSSL's view of "this server"

    docroot = hostcert_docroot(settings)
    vhost = Vhost(names[0], names[0], "main", str(docroot), tuple(names))
    _passed, failed = precheck(vhost, names, settings, server_addresses(settings, names[0]))
    if failed:
        raise SelfCheckFailed(failed[0][0], "; ".join(f"{n}: {why}" for n, why in failed))


def _order(
    settings: Settings, state: ServiceCertState, names: list[str], budgets: Budgets, now: float
) -> SavedCertificate:
    """Reserve budget, order, save the certificate in root's record, settle the budget.
    Raises BudgetDeferred (nothing was sent to the CA) or the order's Error."""
    _precheck(settings, names)
    directory = settings.acme_directory
    known = state.accounts.get(directory)
    ip = budget_ip(settings)
    attempt = Attempt(ROOT_ACCOUNT, tuple(names), budgets.is_renewal(names))
    spends = order_spends(ROOT_ACCOUNT, names, renewal=attempt.renewal)
    reservation = budgets.try_reserve(spends + ([account_spend(ip)] if known is None else []), now)
    if not isinstance(reservation, int):
        budgets.defer(ROOT_ACCOUNT, BUDGET_VHOST, names, reservation, now)
        raise BudgetDeferred(reservation.reason)
    budgets.undefer(ROOT_ACCOUNT, BUDGET_VHOST)
    try:
        session = connect(
            directory,
            ca_bundle=settings.acme_ca_bundle or None,
            account=AcmeAccount(directory, known.key_pem, known.url) if known else None,
        )
        account = session.ensure_account(usable_email(settings.admin_email))
        if known is None or (known.key_pem, known.url) != (account.key_pem, account.url):
            attempt = replace(attempt, account_created=known is None)
            state.accounts[directory] = RootAccount(directory, account.key_pem, account.url)
            save_state(settings, state)
        docroot = hostcert_docroot(settings)
        solver = WebrootSolver(
            {n: docroot for n in names},
            self_check=SelfCheck(
                resolvers=settings.resolvers,
                http_port=settings.http_port,
                https_port=settings.https_port,
            ),
        )
        key = state.current.key_pem if state.current else generate_private_key("rsa:2048")
        attempt = replace(attempt, ordered=True)
        issued = session.obtain_certificate(key, names, solver, deadline=settings.order_deadline)
    except RateLimited as exc:
        until = int(exc.retry_after.timestamp()) if exc.retry_after else int(now) + 3600
        budgets.rate_limited(exc.detail, until, account=ROOT_ACCOUNT, names=names, ip=ip)
        budgets.settle(reservation, attempt.spends(ip), now)
        raise
    except ChallengeFailed as exc:
        if not isinstance(exc, SelfCheckFailed):
            attempt = replace(attempt, failed_names=(exc.domain,))
        budgets.settle(reservation, attempt.spends(ip), now)
        raise
    except BaseException:
        budgets.settle(reservation, attempt.spends(ip), now)
        raise
    budgets.settle(reservation, replace(attempt, issued=True).spends(ip), now)
    budgets.note_issued(names, now)
    facts = certificate_facts(issued.cert_pem)
    saved = SavedCertificate(
        names=list(names),
        key_pem=key,
        cert_pem=issued.cert_pem,
        chain_pem=issued.chain_pem,
        not_before=int(facts.not_before.timestamp()),
        not_after=int(facts.not_after.timestamp()),
        directory=directory,
        issued_at=int(now),
    )
    # Saved before any install: a failed install is retried from this copy next time.
    state.current = saved
    save_state(settings, state)
    return saved


class BudgetDeferred(Error):
    """The order was not made: a rate-limit budget is used up or paused."""


def _install_everywhere(
    whm: WhmAPI, services: list[ServiceCert], saved: SavedCertificate
) -> tuple[list[str], list[str]]:
    done, errors = [], []
    for s in services:
        try:
            whm.install_service_ssl_certificate(
                s.service, saved.cert_pem, saved.key_pem, saved.chain_pem
            )
        except Error as exc:
            errors.append(f"{s.service}: {exc}")
            continue
        done.append(s.service)
    return done, errors


def _pin_follows(whm: WhmAPI, tries: int = 10, pause: float = 2.0) -> bool:
    """Whether root's pinned WHM client still gets answers now that cpsrvd presents the new
    certificate (the client re-reads cpanel.pem on the mismatch). cPanel restarts cpsrvd after
    the install, so a refused connection is waited out for a while."""
    for attempt in range(tries):
        try:
            whm.gethostname()
            return True
        except Error as exc:
            log.info("WHM after the service certificate install: %s", exc)
            if attempt + 1 < tries:
                time.sleep(pause)
    return False


def run_once(
    settings: Settings,
    whm: WhmAPI,
    now: float,
    *,
    explicit: bool = False,
    force: bool = False,
    mail: bool = True,
) -> HostcertOutcome:
    """Check the service certificates; issue, install or reinstall as needed; mail the admin on
    success and failure (`mail=False`: the caller reports). Never raises `Error`: a failure is
    the outcome `failed` (or `deferred` when a budget stopped the order, or another run is
    under way), recorded in root's service-certificate record.
    `explicit`: the admin asked for it now (WHM action, `le-cp hostcert issue`), so it runs even
    when the daemon's upkeep (`hostcert_enabled`) is off; `force`: a new certificate even when
    the installed one is not due. Two meanings, two flags: a forced run is not an explicit one."""
    if not settings.hostcert_enabled and not explicit:
        return HostcertOutcome(DISABLED)
    try:
        with exclusive(settings, "service-cert.lock", "The service certificate"):
            return _run(settings, whm, now, force=force, mail=mail)
    except Busy as exc:
        return HostcertOutcome(DEFERRED, error=str(exc))


def _run(
    settings: Settings, whm: WhmAPI, now: float, *, force: bool, mail: bool
) -> HostcertOutcome:
    outcome = HostcertOutcome(FAILED)
    state = ServiceCertState()
    try:
        state = load_state(settings)
        names = wanted_names(settings, whm)
        outcome.names = names
        services = _services(whm)
        needing = [s for s in services if _problem(s, names, settings, now)]
        if not needing and not force:
            outcome.action = NOT_DUE
            outcome.not_after = min(
                (s.certificate.not_after for s in services if s.certificate), default=0
            )
            return outcome
        saved = state.current
        if not force and saved is not None and _saved_usable(saved, names, settings, now):
            outcome.action = REINSTALLED
        else:
            with Budgets.open(settings) as budgets:
                saved = _order(settings, state, names, budgets, now)
            outcome.action = ISSUED
            needing = services
        outcome.not_after = saved.not_after
        outcome.installed_on, errors = _install_everywhere(whm, needing, saved)
        if "cpanel" in outcome.installed_on:
            outcome.pin_followed = _pin_follows(whm)
            if not outcome.pin_followed:
                errors.append("installed, but WHM did not answer over the new certificate")
        if errors:
            raise Error("Not installed on " + "; ".join(errors))
        state.failures, state.last_error = 0, ""
    except BudgetDeferred as exc:
        outcome.action, outcome.error = DEFERRED, str(exc)
    except Error as exc:
        outcome.action, outcome.error = FAILED, str(exc)
        state.failures += 1
        state.last_error = outcome.error
        log.warning("service certificate: %s", exc)
    state.last_attempt = int(now)
    state.last_result = outcome.action
    failure_mail_due = now - state.failure_mailed_at >= FAILURE_MAIL_INTERVAL
    if mail and (outcome.action == ISSUED or (outcome.action == FAILED and failure_mail_due)):
        outcome.mailed = mail_admin(settings, whm, outcome)
        if outcome.mailed and outcome.action == FAILED:
            state.failure_mailed_at = int(now)
    try:
        save_state(settings, state)
    except OSError as exc:
        log.warning("service certificate record not saved: %s", exc)
    return outcome


def admin_address(settings: Settings, hostname: str) -> str:
    return usable_email(settings.admin_email) or f"root@{hostname or 'localhost'}"


def mail_admin(settings: Settings, whm: WhmAPI, outcome: HostcertOutcome) -> bool:
    """Tell the admin what happened to the service certificate. False when it was not sent."""
    hostname = outcome.names[0] if outcome.names else "this server"
    message = EmailMessage()
    message["From"] = settings.mail_from or f"letsencrypt-cpanel@{hostname}"
    message["To"] = admin_address(settings, hostname)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=hostname)
    message["Auto-Submitted"] = "auto-generated"
    names = ", ".join(outcome.names)
    if outcome.action == ISSUED:
        message["Subject"] = f"[Let's Encrypt SSL] Service certificate renewed for {hostname}"
        until = time.strftime("%Y-%m-%d", time.gmtime(outcome.not_after))
        body = (
            f"The certificate of this server's services ({names}) was issued and installed on: "
            f"{', '.join(outcome.installed_on)}.\nIt is valid until {until} and will be renewed "
            "automatically.\n"
        )
    else:
        message["Subject"] = f"[Let's Encrypt SSL] Service certificate failed for {hostname}"
        body = (
            f"The certificate of this server's services ({names}) could not be issued or "
            f"installed:\n\n  {outcome.error}\n\nIt is tried again at the next cycle. Check that "
            f"every name points at this server and that http://NAME/.well-known/acme-challenge/ "
            f"is served from {settings.hostcert_docroot}.\n"
        )
    message.set_content(body + f"\n-- \nletsencrypt-cpanel on {hostname}\n")
    try:
        build_transport(settings, load_secrets(settings)).send(message)
    except (MailError, Error) as exc:
        log.warning("admin mail about the service certificate not sent: %s", exc)
        return False
    return True
