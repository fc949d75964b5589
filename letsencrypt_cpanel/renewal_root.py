"""Root's side of a user's renewal, wherever it starts: the daemon's cycle (renewal.py), WHM's
"renew now" and `le-cp ssl renew`, so a renewal done by hand is recorded, mailed and hooked as
the daemon's are.

A worker as the user runs `renewal_worker.renewal_job`; root reads its summary back as untrusted
input (`parse_report`), records it in its state (the WHM page's "last renewal attempt"), mails
the account's contact address (success unless turned off server-wide or by the user, failures at
most once per vhost per 48 hours; a mail that cannot go out waits in the outbox for a later
cycle), and runs the post-renewal hook for what was renewed. Apache restarts for the installs
are batched under cPanel's no-restart flag (apache_restarts.py), one batch per group of workers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import sqlite3
import time
from dataclasses import dataclass, field

from .acme_client import Binder
from .apache_restarts import deferred_restarts
from .budgets import BudgetError, Budgets, order_spends
from .config import Settings, load_secrets
from .cpanel.models import Account
from .cpanel.whm import WhmAPI
from .cpanel_autossl import exclude_managed, managed_names
from .errors import Error
from .hooks import run_hook
from .impersonate import JSONValue
from .mail_transport import MailError, MailTransport, build_transport
from .names import usable_email
from .notify import MailItem, TemplateError, compose, default_sender, plan_mails
from .renewal_worker import parse_report, renewal_job
from .state import StateDB, UserReport
from .user_jobs import RootSide

log = logging.getLogger(__name__)

# What a report's actions mean for Apache: a certificate went onto a vhost (install_ssl).
INSTALLING_ACTIONS = frozenset({"renewed", "reinstalled"})


@dataclass
class Tally:
    """What root saw of its workers' reports: (user, vhost) per action, whole-worker failures."""

    renewed: list[tuple[str, str]] = field(default_factory=list)
    reinstalled: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    user_failures: dict[str, str] = field(default_factory=dict)
    mails_sent: int = 0


def installed_something(report: UserReport) -> bool:
    return any(out.action in INSTALLING_ACTIONS for out in report.outcomes)


def hostname_of(whm: WhmAPI) -> str:
    try:
        return whm.gethostname() or socket.getfqdn()
    except Error:
        return socket.getfqdn()


def run_worker(
    settings: Settings,
    user: str,
    now: float,
    *,
    skip: frozenset[str] = frozenset(),
    force: bool = False,
    only: str | None = None,
    binder: Binder | None = None,
    root: RootSide | None = None,
) -> UserReport:
    """A worker as `user` renewing what is due (renewal_worker.renewal_job); its checked report.
    Safe in a pool thread when `root` is None (each call builds its own WHM client, whose HTTP
    session is not shared between threads). Raises Error."""
    root = root or RootSide.build(settings)
    job = renewal_job(skip, now, force=force, only=only, binder=binder)
    return parse_report(root.run_for_user(user, job, timeout=settings.worker_timeout))


@dataclass
class Bookkeeper:
    """Root's bookkeeping of reports, one at a time in one thread: state, mail, then the hook."""

    settings: Settings
    db: StateDB
    accounts: dict[str, Account]
    hostname: str
    now: int
    mailer: MailTransport | None = None
    tally: Tally = field(default_factory=Tally)

    def worker_failed(self, user: str, error: str) -> None:
        log.warning("the worker for %s failed: %s", user, error)
        self.db.record_failure(user, error, self.now)
        self.tally.user_failures[user] = error

    def reported(self, user: str, skip: frozenset[str], report: UserReport) -> None:
        """Record `report` (vhosts in `skip` were not visited: their rows stay) and mail it."""
        before = {row.vhost: row for row in self.db.vhosts(user)}
        mails = plan_mails(
            report,
            before,
            self.settings,
            mailed_at=lambda vhost, kind: self.db.mail_sent_at(user, vhost, kind),
            now=self.now,
        )
        self.db.record_report(user, skip, report, self.now)
        self._count_renewals(user, report)
        tally = self.tally
        lists = {"renewed": tally.renewed, "reinstalled": tally.reinstalled, "failed": tally.failed}
        for out in report.outcomes:
            lists.get(out.action, []).append((user, out.vhost))
            if out.action != "not_due":
                log.info("%s %s: %s %s", user, out.vhost, out.action, out.error)
        account = self.accounts.get(user)
        address = usable_email(account.email if account else None)
        if mails and address is None:
            log.info("%s has no usable contact address: no mail sent", user)
            return
        for kind, items in mails:
            self._send(user, str(address), kind, items)

    def _count_renewals(self, user: str, report: UserReport) -> None:
        """Renewals spend the CA's limits too (an order, the exact set of names): counted in
        root's budgets, so AutoSSL and users' own orders see what is left."""
        renewed = [out.names for out in report.outcomes if out.action == "renewed" and out.names]
        if not renewed:
            return
        try:
            with Budgets.open(self.settings) as budgets:
                for names in renewed:
                    spends = order_spends(user, names, renewal=budgets.is_renewal(names))
                    budgets.spent(spends, self.now)
                    budgets.note_issued(names, self.now)
        except (BudgetError, sqlite3.Error) as exc:
            # Counting is bookkeeping: the renewals, their mails and state are not undone by it.
            log.warning("renewals of %s not counted in the budgets: %s", user, exc)

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
        self.tally.mails_sent += 1
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

    def keep_cpanel_autossl_off(self, whm: WhmAPI, users: list[str]) -> None:
        """Names the plugin secured for `users` stay out of cPanel's own AutoSSL (when set)."""
        if not self.settings.cpanel_autossl_exclude_managed or not users:
            return
        rows = ((u, r.status, r.names) for u in users for r in self.db.vhosts(u))
        for user, error in exclude_managed(whm, managed_names(rows)).items():
            log.warning("cPanel's AutoSSL could not be kept off %s's websites: %s", user, error)

    def run_hook(self) -> None:
        """The post-renewal hook, once, with every renewal tallied so far (none: not run)."""
        hook = self.settings.post_renewal_hook
        if not hook or not self.tally.renewed:
            return
        renewed: list[JSONValue] = []
        for user, vhost in self.tally.renewed:
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


def renew_user_now(
    settings: Settings,
    user: str,
    *,
    force: bool = False,
    only: str | None = None,
    binder: Binder | None = None,
) -> UserReport:
    """One user's renewal now, as root, the daemon's way (WHM's "renew now", `le-cp ssl renew`):
    a worker renews what is due (everything with `force`; only the website `only`), and the
    report is recorded, mailed and hooked as a cycle does it, one Apache restart for its installs.

    Raises Error when the worker could not run or sent nonsense: that is recorded as the user's
    failure, with the daemon's backoff, and the caller shows it."""
    now = time.time()
    root = RootSide.build(settings)
    with StateDB.open(settings) as db:
        keeper = Bookkeeper(settings, db, {}, hostname_of(root.whm), int(now))
        # Websites not visited (`only`) keep their rows: only what was renewed is replaced.
        skip = frozenset(r.vhost for r in db.vhosts(user) if r.vhost != only) if only else None
        with deferred_restarts(settings) as batch:
            try:
                keeper.accounts[user] = root.whm.accountsummary(user)
                report = run_worker(
                    settings, user, now, force=force, only=only, binder=binder, root=root
                )
            except Error as exc:
                keeper.worker_failed(user, str(exc))
                raise
            keeper.reported(user, skip or frozenset(), report)
            if installed_something(report):
                batch.installed()
        keeper.keep_cpanel_autossl_off(root.whm, [user])
        keeper.run_hook()
    return report
