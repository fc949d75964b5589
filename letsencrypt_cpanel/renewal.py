"""The daemon's renewal cycle, root's side: who has work, a worker per user, then the bookkeeping.

Root decides without opening a user's file (ARCHITECTURE.md, "Who runs what, and as whom"): from
its own state (state.py: what workers reported before, failures and their backoff) and from WHM
(`listaccts`: who exists and is suspended; `fetch_ssl_vhosts`: which certificates are installed,
by whom issued, until when). Every account gets a worker at the weekly full sweep, and on the
first cycle. The work itself, as the user, is `renewal_worker.renewal_job`; its summary comes
back through `impersonate` and is read as untrusted input (`renewal_worker.parse_report`).

Several users run at once (threads, each forking its own worker with a hard timeout); the state,
mail and hook are handled in the calling thread only, one finished user at a time, so a `kill -9`
at any moment loses at most the bookkeeping of users whose workers had not reported yet: their
records are whole (written by the workers, atomically), and the next cycle sees them again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .certificates import renewal_due
from .config import Settings, load_secrets
from .cpanel.models import Account, SslVhost
from .cpanel_autossl import exclude_managed, managed_names
from .errors import Error
from .hooks import run_hook
from .impersonate import JSONValue
from .mail_transport import MailError, MailTransport, build_transport
from .names import usable_email
from .notify import MailItem, TemplateError, compose, default_sender, plan_mails

# parse_report is re-exported: the WHM page's "renew now" reads worker summaries with it.
from .renewal_worker import parse_report as parse_report
from .renewal_worker import renewal_job
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
class CycleResult:
    full_sweep: bool = False
    users_run: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    renewed: list[tuple[str, str]] = field(default_factory=list)
    reinstalled: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    user_failures: dict[str, str] = field(default_factory=dict)
    mails_sent: int = 0
    stopped_early: bool = False
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


def _hostname(root: RootSide) -> str:
    try:
        return root.whm.gethostname() or socket.getfqdn()
    except Error:
        return socket.getfqdn()


def _run_user(settings: Settings, work: UserWork, now: float) -> UserReport:
    """In a pool thread: a worker for `work.user`; its checked report. Raises Error."""
    # One RootSide per thread: the WHM client's HTTP session is not shared between threads.
    root = RootSide.build(settings)
    result = root.run_for_user(
        work.user, renewal_job(work.skip, now), timeout=settings.worker_timeout
    )
    return parse_report(result)


@dataclass
class _Cycle:
    """The calling thread's side of a cycle: state, mail and the hook, one report at a time."""

    settings: Settings
    db: StateDB
    accounts: dict[str, Account]
    hostname: str
    now: int
    mailer: MailTransport | None
    result: CycleResult

    def worker_failed(self, user: str, error: str) -> None:
        log.warning("the worker for %s failed: %s", user, error)
        self.db.record_failure(user, error, self.now)
        self.result.user_failures[user] = error

    def reported(self, work: UserWork, report: UserReport) -> None:
        before = {row.vhost: row for row in self.db.vhosts(work.user)}
        mails = plan_mails(
            report,
            before,
            self.settings,
            mailed_at=lambda vhost, kind: self.db.mail_sent_at(work.user, vhost, kind),
            now=self.now,
        )
        self.db.record_report(work.user, work.skip, report, self.now)
        result = self.result
        lists = {
            "renewed": result.renewed,
            "reinstalled": result.reinstalled,
            "failed": result.failed,
        }
        for out in report.outcomes:
            lists.get(out.action, []).append((work.user, out.vhost))
            if out.action != "not_due":
                log.info("%s %s: %s %s", work.user, out.vhost, out.action, out.error)
        account = self.accounts.get(work.user)
        address = usable_email(account.email if account else None)
        if mails and address is None:
            log.info("%s has no usable contact address: no mail sent", work.user)
            return
        for kind, items in mails:
            self._send(work.user, str(address), kind, items)

    def _send(self, user: str, address: str, kind: str, items: list[MailItem]) -> None:
        if not self._deliver(user, address, kind, items):
            # Kept for the next cycles (the SMTP server may be down): a renewal is never
            # undone by a mail that could not go out, and the owner still hears of it.
            payload = json.dumps([dataclasses.asdict(item) for item in items])
            with self.db.transaction():
                self.db.queue_mail(user, address, kind, payload, self.now)

    def _deliver(self, user: str, address: str, kind: str, items: list[MailItem]) -> bool:
        settings = self.settings
        try:
            if self.mailer is None:
                self.mailer = build_transport(settings, load_secrets(settings))
            sender = settings.mail_from or default_sender(self.hostname)
            message = compose(
                kind, to=address, sender=sender, user=user, hostname=self.hostname, items=items
            )
            self.mailer.send(message)
        except (MailError, TemplateError) as exc:
            log.warning("mail to %s (%s) not sent: %s", user, kind, exc)
            return False
        with self.db.transaction():
            for item in items:
                self.db.mark_mail_sent(user, item.vhost, kind, self.now)
        self.result.mails_sent += 1
        return True

    def flush_outbox(self) -> None:
        """Send what earlier cycles could not; what fails again waits longer (backoff)."""
        for mail_id, user, address, kind, payload, attempts in self.db.mail_due(self.now):
            try:
                items = [
                    MailItem(
                        vhost=str(i["vhost"]),
                        names=tuple(str(n) for n in i.get("names", [])),
                        not_after=int(i.get("not_after", 0)),
                        reason=str(i.get("reason", "")),
                    )
                    for i in json.loads(payload)
                ]
            except (ValueError, TypeError, KeyError, AttributeError):
                items = []
            if not items:
                with self.db.transaction():
                    self.db.mail_delivered(mail_id)  # unreadable: nothing to send
                continue
            sent = self._deliver(user, address, kind, items)
            with self.db.transaction():
                if sent:
                    self.db.mail_delivered(mail_id)
                else:
                    self.db.mail_failed_again(mail_id, attempts + 1, self.now)

    def finish(self) -> None:
        for user in self.db.known_users():
            if user not in self.accounts:
                with self.db.transaction():
                    self.db.forget_user(user)
        self.result.next_retry = self.db.next_retry(self.now)
        hook = self.settings.post_renewal_hook
        if not hook or not self.result.renewed:
            return
        renewed: list[JSONValue] = []
        for user, vhost in self.result.renewed:
            row = self.db.vhost(user, vhost)
            names: list[JSONValue] = list(row.names) if row else []
            not_after = row.not_after if row else 0
            renewed.append({"user": user, "vhost": vhost, "names": names, "not_after": not_after})
        summary: dict[str, JSONValue] = {
            "event": "renewed",
            "hostname": self.hostname,
            "time": self.now,
            "renewed": renewed,
        }
        try:
            output = run_hook(hook, summary, timeout=self.settings.hook_timeout)
        except Error as exc:
            log.warning("post-renewal hook: %s", exc)
            return
        log.info("post-renewal hook ran%s", f": {output}" if output else "")


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

    `mailer`: None = built from the settings and secrets when the first mail goes out.
    `should_stop` is asked between users: once it says True no new worker starts, the running
    ones are waited for and recorded, and the cycle ends (`stopped_early`)."""
    root = RootSide.build(settings)
    accounts = root.whm.listaccts()
    last_sweep = float(db.meta(LAST_FULL_SWEEP, "0") or 0)
    result = CycleResult(full_sweep=now - last_sweep >= settings.full_sweep_days * DAY)
    # Every SSL vhost of the server, the cycle's largest object, is let go once planned from
    # (the daemon's peak memory, bench/).
    work, result.suspended = plan_work(
        accounts, root.whm.fetch_ssl_vhosts(), db, settings, now, full_sweep=result.full_sweep
    )
    by_user = {a.user: a for a in accounts}
    cycle = _Cycle(settings, db, by_user, _hostname(root), int(now), mailer, result)
    cycle.flush_outbox()
    log.info(
        "renewal cycle: %d account(s), %d with work%s, %d suspended skipped",
        len(accounts),
        len(work),
        " (full sweep)" if result.full_sweep else "",
        len(result.suspended),
    )
    queue = list(work)
    pending: dict[Future[UserReport], UserWork] = {}
    with ThreadPoolExecutor(max_workers=settings.parallel_workers) as pool:
        while queue or pending:
            while queue and len(pending) < settings.parallel_workers and not should_stop():
                item = queue.pop(0)
                log.info("renewing for %s (%s)", item.user, "; ".join(item.reasons))
                pending[pool.submit(_run_user, settings, item, now)] = item
            if queue and should_stop():
                log.info("stopping: %d user(s) left for the next cycle", len(queue))
                result.stopped_early = True
                queue.clear()
            if not pending:
                break
            done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                result.users_run.append(item.user)
                try:
                    cycle.reported(item, future.result())
                except Error as exc:
                    if should_stop():
                        # Stopping: the init system may have signalled the workers too. Not
                        # the user's failure, so no backoff; the next cycle sees them again.
                        log.info("the worker for %s ended while stopping: %s", item.user, exc)
                        continue
                    cycle.worker_failed(item.user, str(exc))
    if settings.cpanel_autossl_exclude_managed and result.users_run:
        # Names the plugin secured this cycle stay out of cPanel's own AutoSSL.
        rows = ((u, r.status, r.names) for u in result.users_run for r in db.vhosts(u))
        for user, error in exclude_managed(root.whm, managed_names(rows)).items():
            log.warning("cPanel's AutoSSL could not be kept off %s's websites: %s", user, error)
    with db.transaction():
        if not result.stopped_early and result.full_sweep:
            db.set_meta(LAST_FULL_SWEEP, str(int(now)))
        db.set_meta("last_cycle", str(int(now)))
        db.set_meta("last_cycle_result", describe(result))
    cycle.finish()
    return result


def describe(result: CycleResult) -> str:
    return (
        f"{len(result.users_run)} user(s) run, {len(result.renewed)} renewed, "
        f"{len(result.failed)} failed, {len(result.user_failures)} worker failure(s), "
        f"{result.mails_sent} mail(s) sent" + (" (stopped early)" if result.stopped_early else "")
    )
