"""The daemon's renewal cycle, root's side: who has work, a worker per user, then the bookkeeping.

Root decides without opening a user's file (ARCHITECTURE.md, "Who runs what, and as whom"): from
its own state (state.py: what workers reported before, failures and their backoff) and from WHM
(`listaccts`: who exists and is suspended; `fetch_ssl_vhosts`: which certificates are installed,
by whom issued, until when). Every account gets a worker at the weekly full sweep, and on the
first cycle. The work itself, as the user, is `renewal_worker.renewal_job`; its summary comes
back through `impersonate` and is read as untrusted input (`renewal_worker.parse_report`).

Users run `parallel_workers` at a time (threads, each forking its own worker with a hard
timeout; the next starts as soon as one is done), under cPanel's Apache no-restart flag held for
about `apache_restart_batch_seconds` at a time (apache_restarts.in_rolling_holds); the state, mail
and hook (renewal_root.Bookkeeper, shared with WHM's "renew now" and `le-cp ssl renew`) are
handled in the calling thread only, one finished user at a time, so a `kill -9` at any moment
loses at most the bookkeeping of users whose workers had not reported yet: their records are
whole (written by the workers, atomically), and the next cycle sees them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from .apache_restarts import RestartBatch, in_rolling_holds
from .ari_watch import ask_the_ca
from .certificates import renewal_due
from .config import Settings
from .cpanel.models import Account, SslVhost
from .errors import Error
from .mail_transport import MailTransport
from .renewal_root import Bookkeeper, Tally, hostname_of, installed_something, run_worker

# parse_report is re-exported: tests and older callers read worker summaries with it.
from .renewal_worker import parse_report as parse_report
from .state import DAY, StateDB, UserReport
from .user_jobs import RootSide
from .user_renewal import NAMES_GONE, REPLACED

log = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({REPLACED, NAMES_GONE})
LAST_FULL_SWEEP = "last_full_sweep"


@dataclass(frozen=True)
class UserWork:
    """One user to run a worker for, why, and which vhosts to leave alone (backing off)."""

    user: str
    reasons: tuple[str, ...]
    skip: frozenset[str] = frozenset()


@dataclass
class CycleResult(Tally):
    full_sweep: bool = False
    users_run: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    stopped_early: bool = False
    # Batches of workers after which Apache was restarted for what they installed.
    apache_restarts: int = 0
    # When the earliest backoff ends (0 = none): the daemon wakes then, not only every 12 h.
    next_retry: int = 0


# -- who has work --------------------------------------------------------------------------------


def _due(settings: Settings, not_before: int, not_after: int, now: float) -> bool:
    return renewal_due(
        not_before, not_after, now, settings.renewal_fraction, days=settings.renewal_days
    )


def plan_work(
    accounts: list[Account],
    ssl_vhosts: list[SslVhost],
    db: StateDB,
    settings: Settings,
    now: float,
    *,
    full_sweep: bool,
) -> tuple[list[UserWork], list[str]]:
    """(users with work, suspended users skipped). Reads only root's state and WHM's answers."""
    issuers = db.issuers()
    users = db.users()
    installed: dict[str, list[SslVhost]] = {}
    for sv in ssl_vhosts:
        installed.setdefault(sv.user, []).append(sv)
    work: list[UserWork] = []
    suspended: list[str] = []
    for account in sorted(accounts, key=lambda a: a.user):
        if account.user == "root":
            continue
        if account.suspended:
            suspended.append(account.user)
            continue
        user_state = users.get(account.user)
        if user_state is not None and user_state.next_attempt > now:
            continue  # the worker itself failed last time: back off
        reasons: list[str] = ["full sweep"] if full_sweep else []
        skip: set[str] = set()
        known: set[str] = set()
        for row in db.vhosts(account.user):
            known.add(row.vhost)
            if row.status == "failed":
                if row.next_attempt <= now:
                    reasons.append(f"retry {row.vhost}")
                else:
                    skip.add(row.vhost)
                continue
            if row.status in TERMINAL_STATUSES:
                continue
            if row.status == "not_due" and 0 < row.next_attempt <= now:
                reasons.append(f"{row.vhost}: its CA asks for renewal now (ARI)")
                continue
            if _due(settings, row.not_before, row.not_after, now):
                reasons.append(f"{row.vhost} due")
                continue
            on_vhost = [v for v in installed.get(account.user, []) if row.vhost in v.domains]
            cert = on_vhost[0].certificate if on_vhost else None
            moved = cert is None or cert.is_self_signed or cert.not_after != row.not_after
            if moved or (row.issuer and cert is not None and cert.issuer_cn != row.issuer):
                reasons.append(f"{row.vhost}: the plugin's certificate is no longer installed")
        for sv in installed.get(account.user, []):
            cert = sv.certificate
            if cert is None or known.intersection(sv.domains) or cert.issuer_cn not in issuers:
                continue
            if _due(settings, cert.not_before, cert.not_after, now):
                reasons.append(f"{sv.servername}: certificate from our CA due")
        if reasons:
            work.append(UserWork(account.user, tuple(dict.fromkeys(reasons)), frozenset(skip)))
    return work, suspended


# -- the cycle -----------------------------------------------------------------------------------


def run_once(
    now: float,
    settings: Settings,
    db: StateDB,
    *,
    mailer: MailTransport | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CycleResult:
    """One renewal cycle at time `now`. Raises Error only when WHM cannot even list the accounts
    (nothing was done); a user's failure is recorded and the cycle goes on.

    Users run `parallel_workers` at a time under cPanel's no-restart flag, which is let go (one
    Apache restart when something was installed) once it has been held
    `apache_restart_batch_seconds`: the flag is server-wide, so a user issuing on the cPanel page
    meanwhile is served after that restart, not at the end of the cycle.
    `mailer`: None = built from the settings and secrets when the first mail goes out.
    `should_stop` is asked before each worker starts: once it says True no new worker starts,
    the running ones are waited for and recorded, and the cycle ends (`stopped_early`)."""
    root = RootSide.build(settings)
    accounts = root.whm.listaccts()
    last_sweep = float(db.meta(LAST_FULL_SWEEP, "0") or 0)
    result = CycleResult(full_sweep=now - last_sweep >= settings.full_sweep_days * DAY)
    # Before any worker is forked (no TLS beside a fork): windows the CA moved earlier make
    # their users' work now.
    ask_the_ca(db, settings, now, should_stop=should_stop)
    # Every SSL vhost of the server, the cycle's largest object, is let go once planned from
    # (the daemon's peak memory, bench/).
    work, result.suspended = plan_work(
        accounts, root.whm.fetch_ssl_vhosts(), db, settings, now, full_sweep=result.full_sweep
    )
    by_user = {a.user: a for a in accounts}
    keeper = Bookkeeper(settings, db, by_user, hostname_of(root.whm), int(now), mailer, result)
    keeper.flush_outbox()
    log.info(
        "renewal cycle: %d account(s), %d with work%s, %d suspended skipped",
        len(accounts),
        len(work),
        " (full sweep)" if result.full_sweep else "",
        len(result.suspended),
    )

    def start(item: UserWork) -> UserReport:
        log.info("renewing for %s (%s)", item.user, "; ".join(item.reasons))
        return run_worker(settings, item.user, now, skip=item.skip)

    def settle(item: UserWork, future: Future[UserReport], restarts: RestartBatch) -> None:
        _settle(keeper, result, item, future, should_stop, restarts)

    holds, left = in_rolling_holds(settings, work, start, settle, should_stop=should_stop)
    if left:
        log.info("stopping: %d user(s) left for the next cycle", left)
        result.stopped_early = True
    for hold in holds:
        if hold.restarted:
            result.apache_restarts += 1
            log.info("Apache restarted once for the certificates installed under one hold")
    keeper.keep_cpanel_autossl_off(root.whm, result.users_run)
    with db.transaction():
        if not result.stopped_early and result.full_sweep:
            db.set_meta(LAST_FULL_SWEEP, str(int(now)))
        db.set_meta("last_cycle", str(int(now)))
        db.set_meta("last_cycle_result", describe(result))
    for user in db.known_users():
        if user not in by_user:
            with db.transaction():
                db.forget_user(user)
    result.next_retry = db.next_retry(int(now))
    keeper.run_hook()
    return result


def _settle(
    keeper: Bookkeeper,
    result: CycleResult,
    item: UserWork,
    future: Future[UserReport],
    should_stop: Callable[[], bool],
    restarts: RestartBatch,
) -> None:
    """One worker's report recorded (state, mail) in this thread as it arrives; an install
    tells the hold it finished under (`restarts`: Apache restarts at the end of it)."""
    result.users_run.append(item.user)
    try:
        report = future.result()
        keeper.reported(item.user, item.skip, report)
    except Error as exc:
        if should_stop():
            # Stopping: the init system may have signalled the workers too. Not the user's
            # failure, so no backoff; the next cycle sees them again.
            log.info("the worker for %s ended while stopping: %s", item.user, exc)
            return
        keeper.worker_failed(item.user, str(exc))
        return
    if installed_something(report):
        restarts.installed()


def describe(result: CycleResult) -> str:
    return (
        f"{len(result.users_run)} user(s) run, {len(result.renewed)} renewed, "
        f"{len(result.failed)} failed, {len(result.user_failures)} worker failure(s), "
        f"{result.mails_sent} mail(s) sent" + (" (stopped early)" if result.stopped_early else "")
    )
