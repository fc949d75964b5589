"""The server-wide certificate report: what the WHM page and `le-cp report` show.

Built from what WHM says (`fetch_ssl_vhosts`, `get_domain_info`, `listaccts`) and root's own
state (the daemon's per-vhost results), never from a user's files and never with ACME: it is
cheap enough to build on every page view.

- `certificates`: every certificate the plugin manages (the daemon's state rows), with what is
  installed on its vhost now, its key type, and the last renewal attempt and its result;
- `uncovered`: every vhost with no valid certificate (none, self-signed, expired), with the
  reason when one is known (the plugin's last failure there, or what is installed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from .config import Settings
from .cpanel.models import Account, CertificateFacts, DomainInfo, SslVhost
from .errors import CpanelAPIError
from .state import StateDB, UserState, VhostState

DAY = 86400
WEEK = 7 * DAY
CHART_WEEKS = 13
OK_ACTIONS = frozenset({"renewed", "reinstalled", "not_due", "issued", "installed"})
# How each state the daemon records reads to an admin.
RESULT_LABELS = {
    "renewed": "Renewed",
    "reinstalled": "Reinstalled",
    "not_due": "Checked, not due",
    "failed": "Failed",
    "replaced": "Replaced by another certificate",
    "names_gone": "Names no longer on the account",
    "unchecked": "Not yet checked by the daemon",
}


@dataclass(frozen=True)
class CertificateRow:
    user: str
    owner: str
    vhost: str
    names: tuple[str, ...]
    issuer: str
    not_after: int
    key_type: str
    status: str  # the daemon's last action for it (renewed, not_due, failed, replaced, ...)
    installed: bool  # the plugin's certificate is the one on the vhost now
    last_attempt: int
    last_error: str
    failures: int
    next_attempt: int

    @property
    def failed(self) -> bool:
        return self.status == "failed" or bool(self.last_error)

    @property
    def result(self) -> str:
        label = RESULT_LABELS.get(self.status, self.status.replace("_", " ").capitalize())
        return f"{label}: {self.last_error}" if self.last_error else label

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["names"] = list(self.names)
        out.update(failed=self.failed, result=self.result)
        return out


@dataclass(frozen=True)
class UncoveredVhost:
    user: str
    owner: str
    vhost: str  # Apache's servername
    domain: str  # the name an admin knows it by (the addon's name for an addon's vhost)
    names: tuple[str, ...]
    reason: str

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["names"] = list(self.names)
        return out


@dataclass(frozen=True)
class WeekBucket:
    """Certificates expiring in week `index` from now (0 = the next 7 days)."""

    index: int
    start: int
    total: int
    failed: int


@dataclass(frozen=True)
class ServerReport:
    generated: int
    certificates: tuple[CertificateRow, ...]
    uncovered: tuple[UncoveredVhost, ...]
    # What WHM could not tell (e.g. get_domain_info refused): shown, never fatal.
    notes: tuple[str, ...] = ()

    def only_users(self, users: Iterable[str]) -> ServerReport:
        """The same report restricted to these accounts (a reseller without `all`)."""
        keep = set(users)
        return replace(
            self,
            certificates=tuple(c for c in self.certificates if c.user in keep),
            uncovered=tuple(u for u in self.uncovered if u.user in keep),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "generated": self.generated,
            "certificates": [c.summary() for c in self.certificates],
            "uncovered": [u.summary() for u in self.uncovered],
            "expiry_weeks": [asdict(b) for b in expiry_weeks(self.certificates, self.generated)],
            "notes": list(self.notes),
        }


def _installed_on(row: VhostState, mine: list[SslVhost]) -> CertificateFacts | None:
    for sv in mine:
        if row.vhost == sv.servername or row.vhost in sv.domains:
            return sv.certificate
    return None


def _certificate_row(
    row: VhostState, owner: str, mine: list[SslVhost], user_state: UserState | None
) -> CertificateRow:
    cert = _installed_on(row, mine)
    # The daemon's own check (renewal.plan_work): the same expiry means the same certificate.
    installed = cert is not None and not cert.is_self_signed and cert.not_after == row.not_after
    error = row.last_error
    attempt = row.last_attempt
    if user_state is not None and user_state.failures and user_state.last_run >= attempt:
        # The worker for the whole account failed after this vhost's last result.
        attempt, error = user_state.last_run, user_state.last_error or "the worker failed"
    return CertificateRow(
        user=row.user,
        owner=owner,
        vhost=row.vhost,
        names=row.names,
        issuer=row.issuer or (cert.issuer_cn if installed and cert else ""),
        not_after=row.not_after,
        key_type=cert.key_type if installed and cert else "",
        status=row.status,
        installed=installed,
        last_attempt=attempt,
        last_error=error,
        failures=row.failures,
        next_attempt=row.next_attempt,
    )


def _unchecked(
    accounts: dict[str, Account],
    ssl_vhosts: list[SslVhost],
    states: list[VhostState],
    issuers: set[str],
) -> list[CertificateRow]:
    """Certificates from the plugin's CA on vhosts the daemon has no row for yet (issued from
    the cPanel page or `le-cp` since its last sweep): the same rule the daemon uses to find
    them (renewal.plan_work), shown as not yet checked."""
    known = {(s.user, s.vhost) for s in states}
    out: list[CertificateRow] = []
    for sv in ssl_vhosts:
        cert = sv.certificate
        if sv.user not in accounts or cert is None or cert.is_self_signed:
            continue
        if cert.issuer_cn not in issuers or any((sv.user, d) in known for d in sv.domains):
            continue
        if (sv.user, sv.servername) in known:
            continue
        out.append(
            CertificateRow(
                user=sv.user,
                owner=accounts[sv.user].owner,
                vhost=sv.domains[0] if sv.domains else sv.servername,
                names=cert.names,
                issuer=cert.issuer_cn,
                not_after=cert.not_after,
                key_type=cert.key_type,
                status="unchecked",
                installed=True,
                last_attempt=0,
                last_error="",
                failures=0,
                next_attempt=0,
            )
        )
    return out


def _vhost_groups(domains: list[DomainInfo]) -> dict[tuple[str, str], list[DomainInfo]]:
    """(user, servername) -> its domains. An addon or parked domain lives on its parent's vhost
    (cpanel-api.md §4 /etc/userdatadomains)."""
    groups: dict[tuple[str, str], list[DomainInfo]] = {}
    for d in domains:
        servername = d.parent if d.type in ("addon", "parked") and d.parent else d.domain
        groups.setdefault((d.user, servername), []).append(d)
    return groups


def _reason(cert: CertificateFacts | None, now: float) -> str:
    if cert is None:
        return "No certificate installed"
    if cert.is_self_signed:
        return "Self-signed certificate (browsers warn)"
    if cert.not_after and cert.not_after < now:
        day = time.strftime("%Y-%m-%d", time.gmtime(cert.not_after))
        return f"Certificate expired on {day}"
    return ""


def _uncovered(
    accounts: dict[str, Account],
    ssl_vhosts: list[SslVhost],
    domains: list[DomainInfo] | None,
    states: list[VhostState],
    now: float,
    reasons: Mapping[tuple[str, str], str],
) -> list[UncoveredVhost]:
    by_servername = {(sv.user, sv.servername): sv for sv in ssl_vhosts}
    failures = {(s.user, s.vhost): s.last_error for s in states if s.status == "failed"}
    if domains is None:  # WHM would not list domains: judge the SSL vhosts alone
        groups = {
            (sv.user, sv.servername): [
                DomainInfo(n, sv.user, "", "sub", "", sv.docroot) for n in sv.domains
            ]
            for sv in ssl_vhosts
        }
    else:
        groups = _vhost_groups(domains)
    out: list[UncoveredVhost] = []
    for (user, servername), members in sorted(groups.items()):
        sv = by_servername.get((user, servername))
        reason = _reason(sv.certificate if sv else None, now)
        if not reason:
            continue
        names = tuple(dict.fromkeys([servername, *(d.domain for d in members)]))
        addon = next((d.domain for d in members if d.type == "addon"), "")
        domain = addon or servername
        failure = next((failures[(user, n)] for n in names if (user, n) in failures), "")
        if failure:
            reason = f"{reason}; the plugin's last attempt failed: {failure}"
        autossl = next((reasons[(user, n)] for n in names if (user, n) in reasons), "")
        if autossl:
            reason = f"{reason}; {autossl}"
        owner = accounts[user].owner if user in accounts else ""
        out.append(UncoveredVhost(user, owner, servername, domain, names, reason))
    return out


def build_report(
    whm: Any,
    db: StateDB,
    *,
    now: float | None = None,
    users: Iterable[str] | None = None,
    reasons: Mapping[tuple[str, str], str] | None = None,
) -> ServerReport:
    """The report for the whole server, or for `users` only. `whm` is a `WhmAPI`; `reasons`
    maps (user, name) to why AutoSSL did not secure it. Raises CpanelAPIError when WHM cannot
    list accounts or SSL vhosts."""
    when = time.time() if now is None else now
    accounts = {a.user: a for a in whm.listaccts()}
    ssl_vhosts: list[SslVhost] = whm.fetch_ssl_vhosts()
    notes: list[str] = []
    domains: list[DomainInfo] | None
    try:
        domains = whm.get_domain_info()
    except CpanelAPIError as exc:
        domains = None
        notes.append(f"WHM did not list the domains ({exc}): only SSL vhosts are judged.")
    states = db.vhosts()
    user_states = db.users()
    per_user: dict[str, list[SslVhost]] = {}
    for sv in ssl_vhosts:
        per_user.setdefault(sv.user, []).append(sv)
    rows = [
        _certificate_row(
            s,
            accounts[s.user].owner if s.user in accounts else "",
            per_user.get(s.user, []),
            user_states.get(s.user),
        )
        for s in states
        if s.user in accounts  # an account removed since: its rows go at the next cycle
    ]
    rows += _unchecked(accounts, ssl_vhosts, states, db.issuers())
    report = ServerReport(
        generated=int(when),
        certificates=tuple(rows),
        uncovered=tuple(_uncovered(accounts, ssl_vhosts, domains, states, when, reasons or {})),
        notes=tuple(notes),
    )
    return report if users is None else report.only_users(users)


def expiry_weeks(
    rows: Iterable[CertificateRow], now: float, weeks: int = CHART_WEEKS
) -> list[WeekBucket]:
    """How many certificates expire in each of the next `weeks` weeks, and how many of those
    failed their last renewal. Already expired ones count in week 0 (they need action now)."""
    totals = [0] * weeks
    failed = [0] * weeks
    for row in rows:
        if not row.not_after or row.status == "names_gone":
            continue
        index = max(0, int((row.not_after - now) // WEEK))
        if index >= weeks:
            continue
        totals[index] += 1
        failed[index] += int(row.failed)
    start = int(now)
    return [WeekBucket(i, start + i * WEEK, totals[i], failed[i]) for i in range(weeks)]


# -- sorting and filtering (query parameters on the page, options of `le-cp report`) ---------

SORT_KEYS: dict[str, Callable[[CertificateRow], Any]] = {
    "user": lambda r: (r.user, r.vhost),
    "vhost": lambda r: (r.vhost, r.user),
    "issuer": lambda r: (r.issuer, r.user, r.vhost),
    "expiry": lambda r: (r.not_after, r.user, r.vhost),
    "key": lambda r: (r.key_type, r.user, r.vhost),
    "attempt": lambda r: (r.last_attempt, r.user, r.vhost),
    "result": lambda r: (not r.failed, r.status, r.user, r.vhost),
}
STATUS_FILTERS: dict[str, Callable[[CertificateRow], bool]] = {
    "": lambda r: True,
    "failed": lambda r: r.failed,
    "ok": lambda r: not r.failed and r.status in OK_ACTIONS | {"unchecked"},
    "not_installed": lambda r: not r.installed,
}


def select_rows(
    rows: Iterable[CertificateRow],
    *,
    text: str = "",
    status: str = "",
    user: str = "",
    sort: str = "expiry",
    descending: bool = False,
    now: float | None = None,
) -> list[CertificateRow]:
    """Rows matching `text` (in the user, vhost or names), `status` (a STATUS_FILTERS key, or
    "expiring": within 30 days), and `user`, sorted by `sort` (a SORT_KEYS key)."""
    when = time.time() if now is None else now
    needle = text.strip().lower()
    keep = STATUS_FILTERS.get(status, STATUS_FILTERS[""])
    if status == "expiring":
        keep = lambda r: 0 < r.not_after < when + 30 * DAY  # noqa: E731
    found = [
        r
        for r in rows
        if keep(r)
        and (not user or r.user == user)
        and (not needle or needle in " ".join([r.user, r.vhost, *r.names]).lower())
    ]
    return sorted(found, key=SORT_KEYS.get(sort, SORT_KEYS["expiry"]), reverse=descending)


def autossl_reasons(settings: Settings) -> dict[tuple[str, str], str]:
    """(user, name) -> what the last AutoSSL run said about a name it did not secure (its
    report came from workers: text to show, nothing more). Loads autossl.py (and with it the
    issuance code) only when called."""
    from .autossl import SECURED, load_report

    out: dict[tuple[str, str], str] = {}
    for user, entry in load_report(settings).get("users", {}).items():
        if not isinstance(entry, dict):
            continue
        for row in entry.get("vhosts", []):
            if not isinstance(row, dict):
                continue
            for item in row.get("skipped", []):
                if isinstance(item, dict):
                    reason = f"AutoSSL left it off: {item.get('reason')}"
                    out[(user, str(item.get("name")))] = reason
            if row.get("status") != SECURED:
                text = str(row.get("error") or row.get("why") or row.get("status"))
                for name in [row.get("vhost"), *row.get("names", [])]:
                    out.setdefault((user, str(name)), f"AutoSSL {row.get('status')}: {text}")
    return out
