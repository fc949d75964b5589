"""Rate-limit budgets: root spends the CA's limits on purpose, never by accident.

Let's Encrypt limits (https://letsencrypt.org/docs/rate-limits/), which are the defaults here and
which settings override (`budget_*`): new accounts per IP address (10 per 3 hours), new orders
per account (300 per 3 hours), new certificates per registered domain (50 per 7 days; a renewal,
i.e. the exact set of names issued before, does not count), certificates per exact set of names
(5 per 7 days) and failed validations per account and name (5 per hour). Every budget is kept
per ACME directory URL and per the key the CA counts by (IP, account, registered domain, name
set, account+name), in root's own SQLite file `budgets.sqlite3` under `Settings.state_dir`.

Users' issuance runs in workers that cannot write root's state, so root reserves BEFORE it starts
a worker (`try_reserve`: all or nothing) and settles after, from the worker's summary (`settle`).
A reservation never settled (a crash) stays counted: spending too little is the safe side. Work
that does not fit is deferred (`defer`, shown on the WHM page, retried first, oldest first); a
`rateLimited` answer pauses that budget until the time the CA gave (`rate_limited`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import Error
from .sqlite_files import open_wal_database

DB_NAME = "budgets.sqlite3"

NEW_ACCOUNTS = "new_accounts"
NEW_ORDERS = "new_orders"
CERTS_PER_DOMAIN = "certs_per_domain"
DUPLICATES = "duplicates"
FAILED_VALIDATIONS = "failed_validations"

# Public suffixes with two labels that are common on shared hosting. The public suffix list has
# thousands; this approximation errs towards a shorter "registered domain", i.e. towards
# counting more certificates against one budget, which is the safe side.
_SUFFIXES = (
    "co.uk org.uk me.uk ltd.uk plc.uk net.uk ac.uk gov.uk com.au net.au org.au edu.au id.au "
    "co.nz net.nz org.nz co.za org.za com.br net.br org.br com.mx com.ar com.tr co.jp ne.jp or.jp "
    "co.in net.in org.in co.il com.sg com.my com.hk com.cn com.tw co.kr com.pl com.es co.id"
)
TWO_LABEL_SUFFIXES = frozenset(_SUFFIXES.split())

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spent (
    id INTEGER PRIMARY KEY AUTOINCREMENT, directory TEXT NOT NULL, kind TEXT NOT NULL,
    key TEXT NOT NULL, amount INTEGER NOT NULL, at INTEGER NOT NULL,
    reservation INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS spent_lookup ON spent (directory, kind, key, at);
CREATE TABLE IF NOT EXISTS pauses (
    directory TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, until INTEGER NOT NULL,
    detail TEXT NOT NULL DEFAULT '', PRIMARY KEY (directory, kind, key));
CREATE TABLE IF NOT EXISTS issued_sets (
    directory TEXT NOT NULL, names TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (directory, names));
CREATE TABLE IF NOT EXISTS reservations (id INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE IF NOT EXISTS user_reservations (
    id INTEGER PRIMARY KEY, user TEXT NOT NULL, names TEXT NOT NULL, renewal INTEGER NOT NULL,
    new_account INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS user_new_accounts (
    user TEXT NOT NULL, directory TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (user, directory));
CREATE TABLE IF NOT EXISTS deferred (
    user TEXT NOT NULL, vhost TEXT NOT NULL, names TEXT NOT NULL, reason TEXT NOT NULL,
    since INTEGER NOT NULL, until INTEGER NOT NULL, updated INTEGER NOT NULL,
    PRIMARY KEY (user, vhost));
"""


class BudgetError(Error):
    """The budget database cannot be opened or written."""


@dataclass(frozen=True)
class Limit:
    count: int
    window: int  # seconds


def limits(settings: Settings) -> dict[str, Limit]:
    s, hour, day = settings, 3600, 86400
    return {
        NEW_ACCOUNTS: Limit(s.budget_new_accounts, int(s.budget_new_accounts_hours * hour)),
        NEW_ORDERS: Limit(s.budget_new_orders, int(s.budget_new_orders_hours * hour)),
        CERTS_PER_DOMAIN: Limit(
            s.budget_certs_per_domain, int(s.budget_certs_per_domain_days * day)
        ),
        DUPLICATES: Limit(s.budget_duplicates, int(s.budget_duplicates_days * day)),
        FAILED_VALIDATIONS: Limit(
            s.budget_failed_validations, int(s.budget_failed_validations_hours * hour)
        ),
    }


def registered_domain(name: str) -> str:
    """The registered domain the CA counts `name` under (approximately: see TWO_LABEL_SUFFIXES)."""
    labels = name.lower().rstrip(".").removeprefix("*.").split(".")
    take = 3 if ".".join(labels[-2:]) in TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-take:])


def name_set(names: Sequence[str]) -> str:
    return ",".join(sorted({n.lower() for n in names}))


@dataclass(frozen=True)
class Spend:
    kind: str
    key: str
    amount: int = 1


def account_spend(address: str) -> Spend:
    return Spend(NEW_ACCOUNTS, f"ip:{address}")


def order_spends(account: str, names: Sequence[str], *, renewal: bool) -> list[Spend]:
    """What one order for `names` by `account` (a user name: one account per user and CA) costs
    if it yields a certificate. A renewal (same exact names as before) does not count against
    the registered domain (Let's Encrypt exempts renewals there)."""
    spends = [Spend(NEW_ORDERS, account), Spend(DUPLICATES, name_set(names))]
    if not renewal:
        spends += [
            Spend(CERTS_PER_DOMAIN, d) for d in sorted({registered_domain(n) for n in names})
        ]
    return spends


def failed_validation_spend(account: str, name: str) -> Spend:
    return Spend(FAILED_VALIDATIONS, f"{account}|{name.lower()}")


def budget_ip(settings: Settings) -> str:
    """The address the CA sees new accounts come from (the first configured server address)."""
    return settings.server_addresses[0] if settings.server_addresses else "this-server"


@dataclass(frozen=True)
class Attempt:
    """What one try at a certificate really spent, as the worker (or root) saw it."""

    account: str
    names: tuple[str, ...]
    renewal: bool
    account_created: bool = False
    ordered: bool = False
    issued: bool = False
    failed_names: tuple[str, ...] = ()

    def spends(self, ip: str) -> list[Spend]:
        out = [account_spend(ip)] if self.account_created else []
        if self.issued:
            out += order_spends(self.account, self.names, renewal=self.renewal)
        elif self.ordered:
            out.append(Spend(NEW_ORDERS, self.account))
        out += [failed_validation_spend(self.account, n) for n in self.failed_names]
        return out


@dataclass(frozen=True)
class UserReservation:
    user: str
    names: tuple[str, ...]
    renewal: bool
    new_account: bool


@dataclass(frozen=True)
class Denied:
    """Why something does not fit now, and when it may (epoch seconds)."""

    kind: str
    key: str
    until: int
    paused: bool = False

    @property
    def reason(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.until))
        what = "paused by the CA's rateLimited answer" if self.paused else "budget used up"
        return f"rate limit {self.kind} ({self.key}): {what} until {when}"


@dataclass(frozen=True)
class Deferred:
    user: str
    vhost: str
    names: tuple[str, ...]
    reason: str
    since: int
    until: int


def classify_rate_limit(detail: str) -> str:
    """Which budget a `rateLimited` problem is about, from Let's Encrypt's wording."""
    text = detail.lower()
    if "registration" in text or "new account" in text:
        return NEW_ACCOUNTS
    if "exact set" in text or "duplicate" in text:
        return DUPLICATES
    if "failed authorization" in text or "failed validation" in text:
        return FAILED_VALIDATIONS
    if "registered domain" in text or "certificates already issued" in text:
        return CERTS_PER_DOMAIN
    return NEW_ORDERS


class Budgets:
    """Root's budget database. One connection; use it from one thread."""

    def __init__(self, conn: sqlite3.Connection, path: Path, settings: Settings) -> None:
        self.conn = conn
        self.path = path
        self.limits = limits(settings)
        self.directory = settings.acme_directory

    @classmethod
    def open(cls, settings: Settings) -> Budgets:
        """Open (and create: folder 0700, file 0600) the database. Raises BudgetError."""
        path = settings.state_dir / DB_NAME
        try:
            conn = open_wal_database(path, _SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise BudgetError(f"The budget database {path} cannot be opened: {exc}") from exc
        return cls(conn, path, settings)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Budgets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise BudgetError(f"The budget database {self.path} is busy: {exc}") from exc
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def used(self, kind: str, key: str, now: float) -> int:
        since = int(now) - self.limits[kind].window
        row = self.conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM spent "
            "WHERE directory = ? AND kind = ? AND key = ? AND at > ?",
            (self.directory, kind, key, since),
        ).fetchone()
        return int(row[0])

    def usage(self, now: float) -> list[tuple[str, str, int]]:
        """(kind, key, used) of every budget with something spent in its window, fullest first
        (what `le-cp budgets` shows)."""
        found: list[tuple[str, str, int]] = []
        for kind, limit in self.limits.items():
            rows = self.conn.execute(
                "SELECT key, SUM(amount) FROM spent WHERE directory = ? AND kind = ? AND at > ? "
                "GROUP BY key",
                (self.directory, kind, int(now) - limit.window),
            )
            found += [(kind, str(key), int(used)) for key, used in rows if int(used) > 0]
        return sorted(found, key=lambda f: (-f[2] / max(1, self.limits[f[0]].count), f[0], f[1]))

    def pauses(self, now: float) -> list[tuple[str, str, int, str]]:
        """(kind, key, until, the CA's words) of every pause in force."""
        rows = self.conn.execute(
            "SELECT kind, key, until, detail FROM pauses WHERE directory = ? AND until > ? "
            "ORDER BY until",
            (self.directory, int(now)),
        )
        return [(str(k), str(key), int(u), str(d)) for k, key, u, d in rows]

    def paused_until(self, kind: str, key: str, now: float) -> int:
        row = self.conn.execute(
            "SELECT until FROM pauses WHERE directory = ? AND kind = ? AND key = ? AND until > ?",
            (self.directory, kind, key, int(now)),
        ).fetchone()
        return int(row[0]) if row else 0

    def _frees_at(self, kind: str, key: str, need: int, now: float) -> int:
        """When enough of the window's spends have aged out for `need` more to fit."""
        limit = self.limits[kind]
        rows = self.conn.execute(
            "SELECT at, amount FROM spent WHERE directory = ? AND kind = ? AND key = ? AND at > ? "
            "ORDER BY at",
            (self.directory, kind, key, int(now) - limit.window),
        ).fetchall()
        left = sum(int(r[1]) for r in rows) + need - limit.count
        for at, amount in rows:
            left -= int(amount)
            if left <= 0:
                return int(at) + limit.window
        return int(now) + limit.window

    def check(self, spends: Sequence[Spend], now: float) -> Denied | None:
        """The first spend that does not fit now, or None."""
        for spend in spends:
            paused = self.paused_until(spend.kind, spend.key, now)
            if paused:
                return Denied(spend.kind, spend.key, paused, paused=True)
            limit = self.limits[spend.kind]
            if self.used(spend.kind, spend.key, now) + spend.amount > limit.count:
                until = self._frees_at(spend.kind, spend.key, spend.amount, now)
                return Denied(spend.kind, spend.key, until)
        return None

    def is_renewal(self, names: Sequence[str]) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM issued_sets WHERE directory = ? AND names = ?",
            (self.directory, name_set(names)),
        ).fetchone()
        return row is not None

    def deferred(self) -> list[Deferred]:
        """Work deferred for want of budget, oldest first (what the WHM page shows)."""
        rows = self.conn.execute(
            "SELECT user, vhost, names, reason, since, until FROM deferred "
            "ORDER BY since, user, vhost"
        ).fetchall()
        return [
            Deferred(str(r[0]), str(r[1]), tuple(str(r[2]).split(",")) if r[2] else (), *r[3:])
            for r in rows
        ]

    def try_reserve(self, spends: Sequence[Spend], now: float) -> int | Denied:
        """Reserve all of `spends` or none: a reservation id, or why not. Duplicate keys in
        `spends` add up (two orders of one account in one reservation)."""
        merged: dict[tuple[str, str], int] = {}
        for s in spends:
            merged[(s.kind, s.key)] = merged.get((s.kind, s.key), 0) + s.amount
        total = [Spend(k, key, amount) for (k, key), amount in merged.items()]
        with self._transaction():
            denied = self.check(total, now)
            if denied is not None:
                return denied
            reservation = self._next_reservation()
            for s in total:
                self._insert(s, now, reservation)
        return reservation

    def reserve_for_user(
        self, user: str, names: Sequence[str], *, new_account: bool, ip: str, now: float
    ) -> int | Denied:
        """What one order of `user` (account: the user's name) for `names` may spend, reserved
        and remembered as that user's: a user's own order, reserved through root's socket and
        settled by the same user alone (issue_budget.py). A user's new account is counted once
        per window of the new-accounts limit, whatever the user claims: one account per user
        and CA is all an honest user needs, and the server's budget is everyone's."""
        renewal = self.is_renewal(names)
        window = self.limits[NEW_ACCOUNTS].window
        if new_account:
            row = self.conn.execute(
                "SELECT at FROM user_new_accounts WHERE user = ? AND directory = ?",
                (user, self.directory),
            ).fetchone()
            new_account = row is None or int(row[0]) <= now - window
        spends = [account_spend(ip)] if new_account else []
        spends += order_spends(user, names, renewal=renewal)
        reservation = self.try_reserve(spends, now)
        if isinstance(reservation, int):
            with self._transaction():
                self.conn.execute(
                    "INSERT INTO user_reservations VALUES (?,?,?,?,?)",
                    (reservation, user, name_set(names), int(renewal), int(new_account)),
                )
                if new_account:
                    self.conn.execute(
                        "INSERT OR REPLACE INTO user_new_accounts VALUES (?,?,?)",
                        (user, self.directory, int(now)),
                    )
        return reservation

    def open_user_reservations(self, user: str) -> list[int]:
        rows = self.conn.execute("SELECT id FROM user_reservations WHERE user = ?", (user,))
        return [int(r[0]) for r in rows]

    def let_lapse(self, reservation: int) -> None:
        """A user's reservation no longer settleable: what it reserved stays counted (until it
        ages out), the safe side for an order whose outcome root was never told."""
        with self._transaction():
            self.conn.execute("DELETE FROM user_reservations WHERE id = ?", (reservation,))

    def user_reservation(self, reservation: int) -> UserReservation | None:
        """A reservation made by `reserve_for_user` and not yet settled."""
        row = self.conn.execute(
            "SELECT user, names, renewal, new_account FROM user_reservations WHERE id = ?",
            (reservation,),
        ).fetchone()
        if row is None:
            return None
        return UserReservation(
            str(row[0]), tuple(str(row[1]).split(",")), bool(row[2]), bool(row[3])
        )

    def settle(self, reservation: int, actual: Sequence[Spend], now: float) -> None:
        """Replace what `reservation` held by what was really spent."""
        with self._transaction():
            self.conn.execute("DELETE FROM spent WHERE reservation = ?", (reservation,))
            self.conn.execute("DELETE FROM reservations WHERE id = ?", (reservation,))
            self.conn.execute("DELETE FROM user_reservations WHERE id = ?", (reservation,))
            for s in actual:
                if s.amount > 0:
                    self._insert(s, now, 0)

    def spent(self, spends: Sequence[Spend], now: float) -> None:
        """Count what was spent without a reservation (the daemon's renewals: due certificates
        are renewed, whatever is left of a budget, and counted so that others see it)."""
        with self._transaction():
            for s in spends:
                if s.amount > 0:
                    self._insert(s, now, 0)

    def rate_limited(
        self, detail: str, until: int, *, account: str, names: Sequence[str], ip: str
    ) -> str:
        """Pause the budget a `rateLimited` answer is about, for the attempt that got it, until
        the time the CA gave. Returns the budget's kind."""
        kind = classify_rate_limit(detail)
        keys = {
            NEW_ACCOUNTS: [f"ip:{ip}"],
            NEW_ORDERS: [account],
            DUPLICATES: [name_set(names)],
            CERTS_PER_DOMAIN: sorted({registered_domain(n) for n in names}),
            FAILED_VALIDATIONS: [f"{account}|{n.lower()}" for n in names],
        }[kind]
        with self._transaction():
            for key in keys:
                # A later answer never shortens a pause already known (the safe side).
                self.conn.execute(
                    "INSERT INTO pauses VALUES (?,?,?,?,?) "
                    "ON CONFLICT (directory, kind, key) DO UPDATE SET "
                    "until = MAX(until, excluded.until), detail = excluded.detail",
                    (self.directory, kind, key, until, detail[:500]),
                )
        return kind

    def note_issued(self, names: Sequence[str], now: float) -> None:
        with self._transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO issued_sets VALUES (?,?,?)",
                (self.directory, name_set(names), int(now)),
            )

    def defer(
        self, user: str, vhost: str, names: Sequence[str], denied: Denied, now: float
    ) -> None:
        """Remember deferred work; a vhost deferred before keeps its place in the queue."""
        with self._transaction():
            old = self.conn.execute(
                "SELECT since FROM deferred WHERE user = ? AND vhost = ?", (user, vhost)
            ).fetchone()
            since = int(old[0]) if old else int(now)
            self.conn.execute(
                "INSERT OR REPLACE INTO deferred VALUES (?,?,?,?,?,?,?)",
                (user, vhost, name_set(names), denied.reason, since, denied.until, int(now)),
            )

    def undefer(self, user: str, vhost: str) -> None:
        with self._transaction():
            self.conn.execute("DELETE FROM deferred WHERE user = ? AND vhost = ?", (user, vhost))

    def prune(self, now: float) -> None:
        """Forget spends older than every window, and pauses that ended."""
        longest = max(limit.window for limit in self.limits.values())
        with self._transaction():
            self.conn.execute("DELETE FROM spent WHERE at <= ?", (int(now) - max(longest, 86400),))
            self.conn.execute("DELETE FROM pauses WHERE until <= ?", (int(now),))
            # A renewal is the same names within a certificate's life; a year is plenty.
            self.conn.execute("DELETE FROM issued_sets WHERE at <= ?", (int(now) - 400 * 86400,))

    def _next_reservation(self) -> int:
        cur = self.conn.execute("INSERT INTO reservations DEFAULT VALUES")
        return int(cur.lastrowid or 0)

    def _insert(self, spend: Spend, now: float, reservation: int) -> None:
        self.conn.execute(
            "INSERT INTO spent (directory, kind, key, amount, at, reservation) "
            "VALUES (?,?,?,?,?,?)",
            (self.directory, spend.kind, spend.key, spend.amount, int(now), reservation),
        )
