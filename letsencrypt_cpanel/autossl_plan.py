"""AutoSSL's user side, run as the user in workers (user_jobs.py): which vhosts lack a valid
certificate and which names may go to the CA (the plan), then the orders root granted (the
issue). Their summaries are untrusted input to root (`parse_plan`, `parse_issue`).

A vhost needs a certificate when it has none, a self-signed, expired or uncovering one, or
another provider's in its last `autossl_foreign_cutoff_days` (a provider that manages its
certificate renews it before). The plugin's own are renewal's, unless replaced by an invalid one,
or unless the vhost gained names it does not cover (a parked or addon domain added): then it
grows, ordered again for its names plus the new ones that pass the pre-check, with its key, CA
and challenge method; a new name that fails leaves the certificate as it is.
Names excluded, resolving elsewhere or not serving a test file from the docroot are left off,
with the reason: the CA never sees a name that would fail."""

from __future__ import annotations

import fnmatch
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .budgets import Budgets, failed_validation_spend
from .certificates import covers, host_for, names_to_cover, vhost_status
from .challenges import WebrootSolver
from .config import Settings
from .cpanel.models import InstalledHost, Vhost
from .cpanel.quirks import PROXY_SUBDOMAIN_LABELS
from .errors import ChallengeFailed, Error, RateLimited, SelfCheckFailed, WorkerError
from .impersonate import JSONValue
from .issuance import Issuer
from .issue_plan import OrderPlan
from .names import order_names, wildcard_base
from .record_format import STATE_REPLACED, CertificateEntry
from .selfcheck import SelfCheck
from .user_jobs import Job, JobContext
from .user_renewal import renewal_plan

log = logging.getLogger(__name__)

# The proxy subdomains cPanel serves for every main, addon and parked domain (prior-art §4.4).
PROXY_LABELS = ("cpanel", "webmail", "webdisk", "cpcalendars", "cpcontacts")
assert set(PROXY_LABELS) <= PROXY_SUBDOMAIN_LABELS
MAX_VHOSTS = 5000
RATE_LIMITED = "rateLimited"
ALREADY_SECURED = "already_secured"  # by the plugin meanwhile: nothing ordered
INSTALL_FAILED = "InstallFailed"  # issued and saved, not installed: the CA counted it
MAX_NAMES = 200
GAINED_NAMES = "the website has names its certificate does not cover"
# The service subdomains a growing certificate takes for its new domains when it already
# carries them for its old ones (AutoSSL put them there).
SERVICE_LABELS = frozenset({"mail", *PROXY_LABELS})


@dataclass(frozen=True)
class VhostPlan:
    vhost: str
    why: str  # what is wrong with its certificate now
    names: tuple[str, ...]  # passed the pre-check
    skipped: tuple[tuple[str, str], ...]  # (name, reason)
    # Growing the plugin's certificate: its names, kept (not pre-checked: they are on it now).
    kept: tuple[str, ...] = ()

    @property
    def adds_names(self) -> bool:
        """Whether ordering would add a name (a growing certificate with nothing new: no)."""
        return bool(set(self.names) - set(self.kept))


@dataclass(frozen=True)
class UserPlan:
    has_account: bool
    vhosts: tuple[VhostPlan, ...]


@dataclass(frozen=True)
class IssueOutcome:
    vhost: str
    names: tuple[str, ...]
    ok: bool
    error: str = ""
    kind: str = ""
    ordered: bool = False
    failed_name: str = ""
    retry_after: int = 0
    not_after: int = 0


@dataclass(frozen=True)
class IssueReport:
    account_created: bool
    outcomes: tuple[IssueOutcome, ...]


# -- deciding ------------------------------------------------------------------------------------


def needs_certificate(
    vhost: Vhost,
    host: InstalledHost | None,
    entry: CertificateEntry | None,
    settings: Settings,
    now: float,
) -> str:
    """Why the vhost needs a certificate from AutoSSL, or "" when it does not."""
    cert = host.certificate if host is not None else None
    invalid = cert is None or cert.is_self_signed or cert.not_after <= now
    if entry is not None and (entry.state != STATE_REPLACED or not invalid):
        # The plugin's own certificate: renewal looks after it, unless it is on the vhost and
        # the vhost has names it lacks (what the cPanel page shows as "Some names not covered").
        shown = vhost_status(vhost, host, entry, now=now, renewal_fraction=1.0)
        return GAINED_NAMES if shown.managed and shown.uncovered and not invalid else ""
    if cert is None:
        return "no certificate"
    if cert.is_self_signed:
        return "self-signed certificate"
    if cert.not_after <= now:
        return "expired certificate"
    if not covers(cert.names, vhost.domain):
        return f"the certificate does not cover {vhost.domain}"
    if cert.not_after - now < settings.autossl_foreign_cutoff_days * 86400:
        return "another provider's certificate expires within days"
    return ""


def candidate_names(vhost: Vhost, settings: Settings) -> list[str]:
    """The vhost's names, plus cPanel's proxy subdomains of its main, addon and parked domains
    (cPanel makes none for subdomains) unless the admin turned them off."""
    names = list(vhost.names)
    if settings.autossl_proxy_subdomains and vhost.kind != "sub":
        bases = [vhost.domain] + [
            n
            for n in vhost.names
            if n not in (vhost.domain, vhost.servername) and not n.startswith(("www.", "mail."))
        ]
        names += [f"{label}.{base}" for base in bases for label in PROXY_LABELS]
    return list(dict.fromkeys(names))


def kept_names(vhost: Vhost, entry: CertificateEntry) -> list[str]:
    """The names of the plugin's certificate that a grown one keeps: those the user still owns
    (renewal's rule; a wildcard stays while its base name is the vhost's)."""
    owned = {n.lower() for n in vhost.names} | {vhost.domain.lower()}
    return [n for n in entry.names if wildcard_base(n.lower()) in owned]


def gained_names(vhost: Vhost, entry: CertificateEntry, settings: Settings) -> list[str]:
    """The names to add to the plugin's certificate on `vhost`: the vhost's names it does not
    cover (`names_to_cover`), and the service subdomains of the new domains whose label it
    already carries for its old ones."""
    wanted = set(names_to_cover(vhost, entry))
    services = {n.split(".", 1)[0] for n in entry.names} & SERVICE_LABELS
    return [
        n
        for n in candidate_names(vhost, settings)
        if not covers(entry.names, n) and (n in wanted or n.split(".", 1)[0] in services)
    ]


def excluded_by(name: str, patterns: Sequence[str]) -> str:
    return next((p for p in patterns if fnmatch.fnmatchcase(name, p.lower())), "")


def precheck(
    vhost: Vhost,
    names: Sequence[str],
    settings: Settings,
    addresses: Sequence[str],
    home: Path | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """(names that pass, [(name, reason)] for those that do not). One test file in the vhost's
    docroot (inside `home`, never through a link, when given), fetched for every name the way
    the CA would; removed afterwards."""
    check = SelfCheck(
        resolvers=settings.resolvers,
        http_port=settings.http_port,
        https_port=settings.https_port,
        timeout=5.0,
    )
    token = secrets.token_urlsafe(24)
    content = f"letsencrypt-cpanel-precheck.{secrets.token_urlsafe(16)}"
    solver = WebrootSolver({n: Path(vhost.docroot) for n in names}, home=home)
    passed: list[str] = []
    failed: list[tuple[str, str]] = []
    ours = {a.lower() for a in addresses}
    try:
        solver.present(vhost.domain if vhost.domain in names else names[0], token, content)
    except ChallengeFailed as exc:
        return [], [(n, exc.detail) for n in names]
    try:
        for name in names:
            try:
                elsewhere = [a for a in check.addresses(name) if a.lower() not in ours]
                if elsewhere:
                    failed.append((name, f"resolves to {', '.join(elsewhere)}, not this server"))
                    continue
                check.verify(name, token, content)
            except SelfCheckFailed as exc:
                failed.append((name, exc.detail))
                continue
            passed.append(name)
    finally:
        solver.cleanup(vhost.domain if vhost.domain in names else names[0], token)
    return passed, failed


def plan_user(
    vhosts: Sequence[Vhost],
    hosts: Sequence[InstalledHost],
    entries: dict[str, CertificateEntry],
    settings: Settings,
    addresses: Sequence[str],
    now: float,
    home: Path | None = None,
) -> list[VhostPlan]:
    plans = []
    for vhost in vhosts:
        entry = entries.get(vhost.domain)
        why = needs_certificate(vhost, host_for(vhost, hosts), entry, settings, now)
        if not why:
            continue
        kept: list[str] = []
        candidates = candidate_names(vhost, settings)
        if why == GAINED_NAMES and entry is not None:
            kept, candidates = kept_names(vhost, entry), gained_names(vhost, entry, settings)
        skipped: list[tuple[str, str]] = []
        wanted = []
        for name in candidates:
            pattern = excluded_by(name, settings.autossl_exclude)
            if pattern:
                skipped.append((name, f"excluded by the pattern {pattern}"))
            else:
                wanted.append(name)
        passed, failed = precheck(vhost, wanted, settings, addresses, home) if wanted else ([], [])
        skipped += failed
        limit = settings.max_names_per_certificate
        room = max(limit - len(kept), 0)
        for name in passed[room:]:
            skipped.append((name, f"more than {limit} names on one certificate"))
        names = order_names([*kept, *passed[:room]], vhost.domain)
        plans.append(VhostPlan(vhost.domain, why, tuple(names), tuple(skipped), tuple(kept)))
    return plans


def server_addresses(settings: Settings, hostname: str) -> list[str]:
    """The addresses that are this server: the setting, else what the hostname resolves to."""
    if settings.server_addresses:
        return list(settings.server_addresses)
    found = ["127.0.0.1", "::1"]
    try:
        found += SelfCheck(resolvers=settings.resolvers).addresses(hostname)
    except Error as exc:
        log.warning("the hostname %s does not resolve (%s): set server_addresses", hostname, exc)
    return found


def drop_names_over_budget(budgets: Budgets, user: str, p: VhostPlan, now: float) -> VhostPlan:
    """Names past their failed-validation budget are left off, with the reason. A name a
    growing certificate keeps cannot be left off (the new one would be narrower): then nothing
    is added this time."""
    names, skipped = [], list(p.skipped)
    for name in p.names:
        denied = budgets.check([failed_validation_spend(user, name)], now)
        if denied is None:
            names.append(name)
        else:
            skipped.append((name, denied.reason))
    if any(name in p.kept and name not in names for name in p.names):
        names = list(p.kept)
    return VhostPlan(p.vhost, p.why, tuple(names), tuple(skipped), p.kept)


# -- the jobs (as the user) ----------------------------------------------------------------------


def plan_job(addresses: Sequence[str], now: float) -> Job:
    def job(ctx: JobContext) -> JSONValue:
        record = ctx.store.load()
        plans = plan_user(
            ctx.api.domains_data(),
            ctx.api.installed_hosts(),
            record.certificates,
            ctx.settings,
            addresses,
            now,
            ctx.store.home,
        )
        return {
            "has_account": ctx.settings.acme_directory in record.accounts,
            "vhosts": [
                {
                    "vhost": p.vhost,
                    "why": p.why,
                    "names": list[JSONValue](p.names),
                    "skipped": [[n, r] for n, r in p.skipped],
                    "kept": list[JSONValue](p.kept),
                }
                for p in plans
            ],
        }

    return job


def _issue_one(
    issuer: Issuer, ctx: JobContext, vhost: Vhost, names: list[str], grow: bool
) -> IssueOutcome:
    kind, key = ctx.settings.default_key_type, ""
    try:
        with ctx.store.locked() as txn:
            # Under the user's lock: a click on the cPanel page may have secured it meanwhile.
            known = txn.record.certificates.get(vhost.domain)
            if (
                known is not None
                and known.state != STATE_REPLACED
                and known.not_after > time.time()
            ):
                if not grow or all(covers(known.names, n) for n in names):
                    return IssueOutcome(
                        vhost.domain, tuple(known.names), True, kind=ALREADY_SECURED
                    )
                # Growing: its names as the record has them now, its key, CA, method and chain.
                names = order_names(
                    list(dict.fromkeys([*kept_names(vhost, known), *names])), vhost.domain
                )
                kind, key = known.key_type or kind, known.key_pem
                plan = renewal_plan(known, ctx.settings)
            else:
                plan = OrderPlan(ctx.settings.acme_directory, prechecked=True)
            entry = issuer.order(txn, vhost, names, kind, key, plan=plan)
            result = issuer.install(txn, entry, reused=False)
    except RateLimited as exc:
        when = int(exc.retry_after.timestamp()) if exc.retry_after else 0
        return IssueOutcome(
            vhost.domain, tuple(names), False, str(exc), RATE_LIMITED, True, "", when
        )
    except ChallengeFailed as exc:
        failed = "" if isinstance(exc, SelfCheckFailed) else exc.domain
        return IssueOutcome(vhost.domain, tuple(names), False, str(exc), exc.kind, True, failed)
    except Error as exc:
        return IssueOutcome(vhost.domain, tuple(names), False, str(exc), type(exc).__name__, True)
    return IssueOutcome(vhost.domain, tuple(names), True, ordered=True, not_after=result.not_after)


def issue_job(grants: Sequence[tuple[str, Sequence[str], bool]]) -> Job:
    """Order and install a certificate for each granted (vhost, names, grow); `grow`: the
    plugin's certificate on it, ordered again with these names added. A `rateLimited` answer
    stops the rest (they would get the same answer)."""

    def job(ctx: JobContext) -> JSONValue:
        issuer = Issuer(ctx.api, ctx.store, ctx.settings, contact_email=ctx.account.email or None)
        directory = ctx.settings.acme_directory
        had_account = directory in ctx.store.load().accounts
        by_domain = {v.domain: v for v in ctx.api.domains_data()}
        outcomes: list[JSONValue] = []
        for domain, names, grow in grants:
            vhost = by_domain.get(domain)
            # Only names of this vhost, as cPanel lists them now (the grant went through root);
            # a growing certificate's own names are added back from the record.
            mine = set(candidate_names(vhost, ctx.settings)) if vhost else set()
            wanted = [n for n in names if n in mine]
            if vhost is None or not wanted:
                out = IssueOutcome(domain, tuple(names), False, "the website is gone", "gone")
            else:
                out = _issue_one(issuer, ctx, vhost, wanted, grow)
            outcomes.append(
                {
                    "vhost": out.vhost,
                    "names": list[JSONValue](out.names),
                    "ok": out.ok,
                    "error": out.error[:2000],
                    "kind": out.kind[:200],
                    "ordered": out.ordered,
                    "failed_name": out.failed_name,
                    "retry_after": out.retry_after,
                    "not_after": out.not_after,
                }
            )
            if out.kind == RATE_LIMITED:
                break
        created = not had_account and directory in ctx.store.load().accounts
        return {"account_created": created, "outcomes": outcomes}

    return job


# -- reading the summaries (root side; untrusted) ------------------------------------------------


def _str(value: JSONValue, limit: int = 255) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise WorkerError("The AutoSSL worker's summary holds a malformed text.")
    return value


def _int(value: JSONValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**40:
        raise WorkerError("The AutoSSL worker's summary holds a malformed number.")
    return value


def _names(value: JSONValue) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_NAMES:
        raise WorkerError("The AutoSSL worker's summary holds a malformed list of names.")
    return tuple(_str(n).lower() for n in value)


def _items(value: JSONValue) -> list[dict[str, JSONValue]]:
    if not isinstance(value, list) or len(value) > MAX_VHOSTS:
        raise WorkerError("The AutoSSL worker's summary holds a malformed list.")
    if not all(isinstance(v, dict) for v in value):
        raise WorkerError("The AutoSSL worker's summary holds a malformed entry.")
    return [v for v in value if isinstance(v, dict)]


def parse_plan(value: JSONValue) -> UserPlan:
    if not isinstance(value, dict) or not isinstance(value.get("has_account"), bool):
        raise WorkerError("The AutoSSL worker sent back a plan without the expected fields.")
    plans = []
    for item in _items(value.get("vhosts")):
        skipped = item.get("skipped")
        if not isinstance(skipped, list) or len(skipped) > MAX_NAMES:
            raise WorkerError("The AutoSSL worker's plan holds a malformed list.")
        pairs = []
        for pair in skipped:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WorkerError("The AutoSSL worker's plan holds a malformed entry.")
            pairs.append((_str(pair[0]).lower(), _str(pair[1], 2000)))
        vhost = _str(item.get("vhost")).lower()
        names = _names(item.get("names"))
        kept = tuple(n for n in _names(item.get("kept", [])) if n in names)
        plans.append(VhostPlan(vhost, _str(item.get("why")), names, tuple(pairs), kept))
    return UserPlan(bool(value["has_account"]), tuple(plans))


def parse_issue(value: JSONValue) -> IssueReport:
    if not isinstance(value, dict) or not isinstance(value.get("account_created"), bool):
        raise WorkerError("The AutoSSL worker sent back a report without the expected fields.")
    outcomes = []
    for item in _items(value.get("outcomes")):
        ok, ordered = item.get("ok"), item.get("ordered")
        if not isinstance(ok, bool) or not isinstance(ordered, bool):
            raise WorkerError("The AutoSSL worker's report holds a malformed outcome.")
        outcomes.append(
            IssueOutcome(
                _str(item.get("vhost")).lower(),
                _names(item.get("names")),
                ok,
                _str(item.get("error"), 2000),
                _str(item.get("kind"), 200),
                ordered,
                _str(item.get("failed_name")).lower(),
                _int(item.get("retry_after")),
                _int(item.get("not_after")),
            )
        )
    return IssueReport(bool(value["account_created"]), tuple(outcomes))


def stamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "-"
