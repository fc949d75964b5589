"""The plugin's AutoSSL, root's side: every vhost without a valid certificate gets one, within the
CA's rate limits.

A run has three steps, so budgets are reserved before anything reaches the CA and deferred work
goes first, oldest first:
1. plan: a worker per user (as the user, in parallel) says which vhosts need a certificate and
   which names passed the pre-check (autossl_plan.py); nothing is sent to the CA;
2. reserve (here, one thread): a new account per user without one, then per vhost a new order,
   its registered domains and its exact name set (budgets.py); what does not fit is deferred,
   names past their failed-validation budget are left off;
3. issue: a worker per user with grants (in parallel) orders and installs; its report settles
   the budgets, and a `rateLimited` answer pauses that budget until the CA's time.
Installs happen under cPanel's no-restart flag, with one Apache restart at the end
(apache_restarts.py). The outcome of each vhost goes to `autossl-report.json` in the state
dir, which `le-cp autossl` and the WHM page read (`load_report`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from .apache_restarts import RestartBatch, exclusive, in_rolling_holds
from .autossl_plan import (
    INSTALL_FAILED,
    RATE_LIMITED,
    IssueReport,
    UserPlan,
    VhostPlan,
    drop_names_over_budget,
    issue_job,
    parse_issue,
    parse_plan,
    plan_job,
    server_addresses,
    stamp,
)
from .budgets import (
    Attempt,
    Budgets,
    Denied,
    account_spend,
    budget_ip,
    order_spends,
)
from .certificates import covers
from .config import Settings
from .errors import Error
from .user_jobs import Job, RootSide

log = logging.getLogger(__name__)
REPORT_FILE = "autossl-report.json"
T = TypeVar("T")

SECURED = "secured"
FAILED = "failed"
DEFERRED = "deferred"
NOTHING_TO_DO = "nothing_to_do"


@dataclass
class VhostResult:
    user: str
    vhost: str
    status: str  # secured, failed, deferred, nothing_to_do (every name was left off)
    why: str = ""
    names: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    error: str = ""
    not_after: int = 0

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["names"] = list(self.names)
        data["skipped"] = [{"name": n, "reason": r} for n, r in self.skipped]
        return data


@dataclass
class AutoSSLResult:
    vhosts: list[VhostResult] = field(default_factory=list)
    worker_failures: dict[str, str] = field(default_factory=dict)
    accounts_created: int = 0
    restarted: bool = False

    def with_status(self, status: str) -> list[VhostResult]:
        return [v for v in self.vhosts if v.status == status]

    def describe(self) -> str:
        counts = {s: len(self.with_status(s)) for s in (SECURED, FAILED, DEFERRED)}
        skipped = sum(len(v.skipped) for v in self.vhosts)
        return (
            f"AutoSSL: {counts[SECURED]} secured, {counts[FAILED]} failed, "
            f"{counts[DEFERRED]} deferred, {skipped} name(s) left off, "
            f"{len(self.worker_failures)} worker failure(s)"
        )


@dataclass
class _Grant:
    plan: VhostPlan
    reservation: int
    renewal: bool


@dataclass
class _UserGrants:
    user: str
    account_reservation: int = 0
    grants: list[_Grant] = field(default_factory=list)


def _with_work(settings: Settings, root: RootSide, accounts: list[str], now: float) -> list[str]:
    """The accounts that may have a vhost without a valid certificate, judged from WHM alone
    (get_domain_info, fetch_ssl_vhosts), plus those with deferred work: a worker per account
    every cycle would be the slowest part of a big server's cycle. When WHM cannot say, all."""
    try:
        domains = root.whm.get_domain_info()
        installed = {(v.user, v.servername): v.certificate for v in root.whm.fetch_ssl_vhosts()}
        with Budgets.open(settings) as budgets:
            wanted = {d.user for d in budgets.deferred()}
    except Error as exc:
        log.info("AutoSSL plans every account (%s)", exc)
        return accounts
    cutoff = now + settings.autossl_foreign_cutoff_days * 86400
    for d in domains:
        # A parked domain lives on its parent's vhost, an addon on its backing subdomain's: one
        # its certificate does not cover may be a name the plugin's certificate should gain.
        shared = d.type in ("addon", "parked") and d.parent
        cert = installed.get((d.user, d.parent if shared else d.domain))
        if (
            cert is None
            or cert.is_self_signed
            or cert.not_after < cutoff
            or not covers(cert.names, d.domain)
        ):
            wanted.add(d.user)
    return [a for a in accounts if a in wanted]


def _in_parallel(
    settings: Settings, jobs: dict[str, Job], parse: Callable[[Any], T], failures: dict[str, str]
) -> dict[str, T]:
    """Run each user's job in a worker, `parallel_workers` at a time; parsed results by user."""

    def one(user: str) -> T:
        # One RootSide per thread: the WHM client's HTTP session is not shared between threads.
        return parse(RootSide.build(settings).run_for_user(user, jobs[user]))

    results: dict[str, T] = {}
    with ThreadPoolExecutor(max_workers=settings.parallel_workers) as pool:
        futures = {user: pool.submit(one, user) for user in jobs}
        for user, future in futures.items():
            try:
                results[user] = future.result()
            except Error as exc:
                log.warning("AutoSSL worker for %s failed: %s", user, exc)
                failures[user] = str(exc)
    return results


def _issue_in_holds(
    settings: Settings,
    jobs: dict[str, Job],
    granted: list[_UserGrants],
    budgets: Budgets,
    ip: str,
    now: float,
    result: AutoSSLResult,
) -> None:
    """The issue workers under rolling holds of cPanel's no-restart flag
    (apache_restarts.in_rolling_holds): a first run over a big server is long, and users' own
    installs meanwhile must not wait for its end. Each user's report is settled (budgets,
    results) here, as it arrives."""

    def one(user: str) -> IssueReport:
        return parse_issue(RootSide.build(settings).run_for_user(user, jobs[user]))

    by_user = {g.user: g for g in granted}

    def settle(user: str, future: Future[IssueReport], hold: RestartBatch) -> None:
        reports: dict[str, IssueReport] = {}
        try:
            reports[user] = future.result()
        except Error as exc:
            log.warning("AutoSSL worker for %s failed: %s", user, exc)
            result.worker_failures[user] = str(exc)
        mine = [by_user[user]] if user in by_user else []
        _settle_all(budgets, mine, reports, ip, now, result, hold)

    holds, _left = in_rolling_holds(settings, list(jobs), one, settle)
    result.restarted = any(h.restarted for h in holds)


def _reserve(
    budgets: Budgets, plans: dict[str, UserPlan], ip: str, now: float, result: AutoSSLResult
) -> list[_UserGrants]:
    """Budgets for the planned work, deferred vhosts first (oldest first); the rest deferred."""

    waiting = {(d.user, d.vhost): d.since for d in budgets.deferred()}
    for user, vhost in list(waiting):
        # Deferred before, no longer wanted (secured meanwhile, or gone): off the list.
        if user in plans and vhost not in {p.vhost for p in plans[user].vhosts}:
            budgets.undefer(user, vhost)

    def since(user: str, vhost: str) -> float:
        return waiting.get((user, vhost)) or now + 1

    def defer(user: str, p: VhostPlan, denied: Denied) -> None:
        budgets.defer(user, p.vhost, p.names, denied, now)
        result.vhosts.append(
            VhostResult(user, p.vhost, DEFERRED, p.why, p.names, p.skipped, denied.reason)
        )

    order = sorted(
        plans, key=lambda u: (min((since(u, p.vhost) for p in plans[u].vhosts), default=now + 1), u)
    )
    out = []
    for user in order:
        todo = sorted(plans[user].vhosts, key=lambda p: (since(user, p.vhost), p.vhost))
        grants = _UserGrants(user)
        for index, planned in enumerate(todo):
            p = drop_names_over_budget(budgets, user, planned, now)
            if not p.adds_names:  # no name passed; a growing certificate stays as it is
                result.vhosts.append(
                    VhostResult(user, p.vhost, NOTHING_TO_DO, p.why, (), p.skipped)
                )
                continue
            if not plans[user].has_account and not grants.account_reservation:
                got = budgets.try_reserve([account_spend(ip)], now)
                if isinstance(got, Denied):
                    for rest in todo[index:]:  # no account, no order: all of them wait
                        defer(user, rest, got)
                    break
                grants.account_reservation = got
            renewal = budgets.is_renewal(p.names)
            got = budgets.try_reserve(order_spends(user, p.names, renewal=renewal), now)
            if isinstance(got, Denied):
                defer(user, p, got)
                continue
            budgets.undefer(user, p.vhost)
            grants.grants.append(_Grant(p, got, renewal))
        if grants.grants:
            out.append(grants)
        elif grants.account_reservation:
            budgets.settle(grants.account_reservation, [], now)
    return out


def _settle(
    budgets: Budgets, grants: _UserGrants, report: IssueReport | None, ip: str, now: float
) -> list[VhostResult]:
    user = grants.user
    if grants.account_reservation:
        created = report is None or report.account_created  # no report: assume it was spent
        budgets.settle(grants.account_reservation, [account_spend(ip)] if created else [], now)
    outcomes = {o.vhost: o for o in report.outcomes} if report else {}
    results = []
    for g in grants.grants:
        p = g.plan
        out = outcomes.get(p.vhost)
        if out is None:  # not tried (a rate limit stopped the worker) or the worker died
            budgets.settle(
                g.reservation, [] if report else order_spends(user, p.names, renewal=g.renewal), now
            )
            why = (
                "not tried: the worker failed" if report is None else "not tried after a rate limit"
            )
            results.append(VhostResult(user, p.vhost, FAILED, p.why, p.names, p.skipped, why))
            continue
        issued = (out.ok and out.ordered) or out.kind == INSTALL_FAILED
        failed = (out.failed_name,) if out.failed_name in p.names else ()
        attempt = Attempt(
            user, p.names, g.renewal, ordered=out.ordered, issued=issued, failed_names=failed
        )
        budgets.settle(g.reservation, attempt.spends(ip), now)
        if issued:
            budgets.note_issued(p.names, now)
        if out.kind == RATE_LIMITED:
            until = out.retry_after or int(now) + 3600
            budgets.rate_limited(out.error, until, account=user, names=p.names, ip=ip)
        status = SECURED if out.ok else FAILED
        results.append(
            VhostResult(user, p.vhost, status, p.why, p.names, p.skipped, out.error, out.not_after)
        )
    return results


def run_once(
    settings: Settings,
    now: float,
    *,
    users: Sequence[str] | None = None,
    root: RootSide | None = None,
    batch: RestartBatch | None = None,
    force: bool = False,
) -> AutoSSLResult:
    """One AutoSSL run at `now` over every account (or `users`), when `autossl_enabled` (an
    explicit `users` list or `force` runs regardless). Raises Error only when WHM cannot list
    the accounts or the budget database cannot be opened; a user's failure is in
    `worker_failures`.
    `batch`: the caller's no-restart batch (the daemon's cycle); None = one of our own."""
    result = AutoSSLResult()
    if not settings.autossl_enabled and users is None and not force:
        return result
    with exclusive(settings, "autossl.lock", "AutoSSL"):
        return _run(settings, now, users, root, batch, result)


def _run(
    settings: Settings,
    now: float,
    users: Sequence[str] | None,
    root: RootSide | None,
    batch: RestartBatch | None,
    result: AutoSSLResult,
) -> AutoSSLResult:
    root = root or RootSide.build(settings)
    wanted = None if users is None else set(users)
    every = root.whm.listaccts()
    listed = [
        a.user
        for a in every
        if a.user != "root" and not a.suspended and (wanted is None or a.user in wanted)
    ]
    accounts = listed if users is not None else _with_work(settings, root, listed, now)
    addresses = server_addresses(settings, root.whm.gethostname())
    ip = budget_ip(settings)
    plans = _in_parallel(
        settings,
        {u: plan_job(addresses, now) for u in accounts},
        parse_plan,
        result.worker_failures,
    )
    with Budgets.open(settings) as budgets:
        budgets.prune(now)
        known = {a.user for a in every} | {"root"}  # root: the service certificate's row
        for d in [d for d in budgets.deferred() if d.user not in known]:
            budgets.undefer(d.user, d.vhost)  # the account is gone
        granted = _reserve(budgets, plans, ip, now, result)
        jobs = {
            g.user: issue_job([(x.plan.vhost, x.plan.names, bool(x.plan.kept)) for x in g.grants])
            for g in granted
        }
        if batch is None:
            _issue_in_holds(settings, jobs, granted, budgets, ip, now, result)
        else:
            reports = _in_parallel(settings, jobs, parse_issue, result.worker_failures)
            _settle_all(budgets, granted, reports, ip, now, result, batch)
    save_report(settings, result, now, users=listed, everyone=users is None)
    log.info("%s", result.describe())
    return result


def _settle_all(
    budgets: Budgets,
    granted: list[_UserGrants],
    reports: dict[str, IssueReport],
    ip: str,
    now: float,
    result: AutoSSLResult,
    batch: RestartBatch,
) -> None:
    settled: list[VhostResult] = []
    for grants in granted:
        report = reports.get(grants.user)
        result.accounts_created += int(bool(report and report.account_created))
        settled += _settle(budgets, grants, report, ip, now)
    result.vhosts += settled
    if any(v.status == SECURED for v in settled):
        batch.installed()


# -- the report the WHM page and le-cp read -----------------------------------------------------


def load_report(settings: Settings) -> dict[str, Any]:
    """{"at": epoch, "users": {user: {"at": epoch, "vhosts": [VhostResult.summary(), ...]}}}."""
    try:
        data = json.loads((settings.state_dir / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"at": 0, "users": {}}
    return data if isinstance(data, dict) else {"at": 0, "users": {}}


def save_report(
    settings: Settings, result: AutoSSLResult, now: float, *, users: Sequence[str], everyone: bool
) -> None:
    """Merge this run into the report: the `users` it covered are replaced (a user with nothing
    left to report gets no rows), others kept; `everyone`: a full run, accounts gone are dropped."""
    data = load_report(settings)
    known = {} if everyone else data.get("users", {})
    for user in users:
        rows = [v.summary() for v in result.vhosts if v.user == user]
        error = result.worker_failures.get(user, "")
        known[user] = {"at": int(now), "vhosts": rows, "worker_error": error}
    data["users"] = known
    data["at"] = int(now)
    folder = settings.state_dir
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{REPORT_FILE}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, (settings.state_dir / REPORT_FILE))
    except BaseException:
        os.unlink(tmp)
        raise


def describe_vhost(row: dict[str, Any]) -> str:
    """One line per vhost for `le-cp autossl` (the report came from workers: shown, not run)."""
    status = str(row.get("status", ""))
    text = f"{row.get('user', '')} {row.get('vhost', '')}: {status}"
    if status == SECURED:
        text += f" until {stamp(int(row.get('not_after') or 0))}"
    if row.get("error"):
        text += f" ({row['error']})"
    return text
