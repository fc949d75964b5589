"""Root's own memory: SQLite (WAL) under `Settings.state_dir`, never a file in a user's home.

What the daemon and the WHM page read to decide and show, without opening users' files:
- `vhosts`: per user and vhost, the last thing a worker reported (status, names, validity,
  issuer), failures, the last error and when to try again (backoff);
- `users`: per user, the last worker run, a failure of the worker itself and its backoff, and the
  user's own "no mail" choice (their record's `disable_mail`, carried back by the worker);
- `mail_sent`: when a mail of each kind last went out per vhost (throttling);
- `issuers`: issuer names seen on the plugin's certificates (to spot ours in `fetch_ssl_vhosts`);
- `history`: what happened, newest last; `meta`: small facts such as the last full sweep.

Every change is one transaction (`with db.transaction()`): a `kill -9` leaves the database as it
was before or after, never between. Everything stored came from a worker, so from a user: it is
data to compare and show, never a path to open or a command to run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .config import Settings
from .errors import Error
from .sqlite_files import open_wal_database

# The row and report types live in state_rows; imported from here as they always were.
from .state_rows import HistoryEntry as HistoryEntry
from .state_rows import UserReport as UserReport
from .state_rows import UserState as UserState
from .state_rows import VhostReport as VhostReport
from .state_rows import VhostState as VhostState

DB_NAME = "state.sqlite3"
HOUR = 3600
DAY = 24 * HOUR
MAX_HISTORY_ROWS = 20000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vhosts (
    user TEXT NOT NULL, vhost TEXT NOT NULL, status TEXT NOT NULL,
    names TEXT NOT NULL DEFAULT '[]', not_before INTEGER NOT NULL DEFAULT 0,
    not_after INTEGER NOT NULL DEFAULT 0, issuer TEXT NOT NULL DEFAULT '',
    failures INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    last_attempt INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user, vhost));
CREATE TABLE IF NOT EXISTS users (
    user TEXT PRIMARY KEY, last_run INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
    next_attempt INTEGER NOT NULL DEFAULT 0, disable_mail INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS mail_sent (
    user TEXT NOT NULL, vhost TEXT NOT NULL, kind TEXT NOT NULL, sent_at INTEGER NOT NULL,
    PRIMARY KEY (user, vhost, kind));
CREATE TABLE IF NOT EXISTS issuers (name TEXT PRIMARY KEY, seen INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, user TEXT NOT NULL,
    vhost TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ari (
    user TEXT NOT NULL, vhost TEXT NOT NULL, cert_id TEXT NOT NULL, recheck_at INTEGER NOT NULL,
    PRIMARY KEY (user, vhost));
CREATE TABLE IF NOT EXISTS mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, address TEXT NOT NULL,
    kind TEXT NOT NULL, items TEXT NOT NULL, queued INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0);
"""

# A mail that could not be sent is tried again each cycle for this long, then given up on.
MAIL_KEPT_FOR = 7 * DAY


class StateError(Error):
    """The daemon's state database cannot be opened or written."""


def backoff_delay(failures: int) -> int:
    """Seconds before the next try after `failures` failures in a row: an hour, doubling,
    at most a day (1 h, 2 h, 4 h, 8 h, 16 h, 24 h, 24 h, ...)."""
    if failures <= 0:
        return 0
    return int(min(HOUR * 2 ** min(failures - 1, 16), DAY))


class StateDB:
    """One connection to the state database. Use it from one thread (the daemon's main one)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, settings: Settings) -> StateDB:
        """Open (and create, 0700 folder / 0600 file) the database. Raises StateError."""
        path = settings.state_dir / DB_NAME
        try:
            conn = open_wal_database(path, _SCHEMA, synchronous_full=True)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"The state database {path} cannot be opened: {exc}") from exc
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateError(f"The state database {self.path} is busy: {exc}") from exc
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(f"The state database {self.path} cannot be written: {exc}") from exc

    # -- reading --------------------------------------------------------------------------------

    def vhosts(self, user: str | None = None) -> list[VhostState]:
        if user is None:
            cur = self.conn.execute("SELECT * FROM vhosts ORDER BY user, vhost")
        else:
            cur = self.conn.execute("SELECT * FROM vhosts WHERE user = ? ORDER BY vhost", (user,))
        return [_vhost_row(row) for row in cur.fetchall()]

    def vhost(self, user: str, vhost: str) -> VhostState | None:
        cur = self.conn.execute("SELECT * FROM vhosts WHERE user = ? AND vhost = ?", (user, vhost))
        row = cur.fetchone()
        return _vhost_row(row) if row else None

    def known_users(self) -> set[str]:
        """Every user with a row (vhosts or users), without reading the rows themselves."""
        cur = self.conn.execute("SELECT user FROM vhosts UNION SELECT user FROM users")
        return {str(row[0]) for row in cur}

    def users(self) -> dict[str, UserState]:
        cur = self.conn.execute("SELECT * FROM users")
        return {row[0]: _user_row(row) for row in cur.fetchall()}

    def user(self, user: str) -> UserState | None:
        row = self.conn.execute("SELECT * FROM users WHERE user = ?", (user,)).fetchone()
        return _user_row(row) if row else None

    def issuers(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT name FROM issuers")}

    def mail_sent_at(self, user: str, vhost: str, kind: str) -> int:
        row = self.conn.execute(
            "SELECT sent_at FROM mail_sent WHERE user = ? AND vhost = ? AND kind = ?",
            (user, vhost, kind),
        ).fetchone()
        return int(row[0]) if row else 0

    def history(self, limit: int = 100, user: str | None = None) -> list[HistoryEntry]:
        where = " WHERE user = ?" if user else ""
        cur = self.conn.execute(
            f"SELECT at, user, vhost, action, detail FROM history{where} "  # noqa: S608
            "ORDER BY id DESC LIMIT ?",
            (*((user,) if user else ()), limit),
        )
        return [HistoryEntry(*row) for row in reversed(cur.fetchall())]

    def meta(self, key: str, default: str = "") -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    # -- writing (call inside `transaction()`) ----------------------------------------------------

    def put_vhost(self, state: VhostState, now: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO vhosts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                state.user,
                state.vhost,
                state.status,
                json.dumps(list(state.names)),
                state.not_before,
                state.not_after,
                state.issuer,
                state.failures,
                state.last_error,
                state.last_attempt,
                state.next_attempt,
                now,
            ),
        )

    def put_user(self, state: UserState) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO users VALUES (?,?,?,?,?,?)",
            (
                state.user,
                state.last_run,
                state.failures,
                state.last_error,
                state.next_attempt,
                int(state.disable_mail),
            ),
        )

    def forget_user(self, user: str) -> None:
        """An account that no longer exists: its rows go (history stays)."""
        for table in ("vhosts", "users", "mail_sent", "ari"):
            self.conn.execute(f"DELETE FROM {table} WHERE user = ?", (user,))  # noqa: S608

    def add_issuer(self, name: str, now: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO issuers VALUES (?, ?)", (name, now))

    def queue_mail(self, user: str, address: str, kind: str, items: str, now: int) -> None:
        """Keep a message that could not be sent (`items`: JSON) for a later cycle."""
        self.conn.execute(
            "INSERT INTO mail_outbox (user, address, kind, items, queued) VALUES (?, ?, ?, ?, ?)",
            (user, address, kind, items, now),
        )

    def mail_due(self, now: int) -> list[tuple[int, str, str, str, str, int]]:
        """(id, user, address, kind, items, attempts) of the queued messages due by `now`;
        messages older than MAIL_KEPT_FOR are dropped."""
        with self.transaction():
            self.conn.execute("DELETE FROM mail_outbox WHERE queued < ?", (now - MAIL_KEPT_FOR,))
        rows = self.conn.execute(
            "SELECT id, user, address, kind, items, attempts FROM mail_outbox "
            "WHERE next_try <= ? ORDER BY id",
            (now,),
        ).fetchall()
        return [(_int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), _int(r[5])) for r in rows]

    def mail_delivered(self, mail_id: int) -> None:
        self.conn.execute("DELETE FROM mail_outbox WHERE id = ?", (mail_id,))

    def mail_failed_again(self, mail_id: int, attempts: int, now: int) -> None:
        self.conn.execute(
            "UPDATE mail_outbox SET attempts = ?, next_try = ? WHERE id = ?",
            (attempts, now + backoff_delay(attempts), mail_id),
        )

    def mark_mail_sent(self, user: str, vhost: str, kind: str, now: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO mail_sent VALUES (?, ?, ?, ?)", (user, vhost, kind, now)
        )

    def add_history(self, now: int, user: str, vhost: str, action: str, detail: str = "") -> None:
        self.conn.execute(
            "INSERT INTO history (at, user, vhost, action, detail) VALUES (?,?,?,?,?)",
            (now, user, vhost, action, detail),
        )

    def trim_history(self) -> None:
        self.conn.execute(
            "DELETE FROM history WHERE id <= (SELECT MAX(id) FROM history) - ?",
            (MAX_HISTORY_ROWS,),
        )

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def forget_vhost(self, user: str, vhost: str) -> None:
        self.conn.execute("DELETE FROM vhosts WHERE user = ? AND vhost = ?", (user, vhost))
        self.conn.execute("DELETE FROM ari WHERE user = ? AND vhost = ?", (user, vhost))

    # -- ARI: root asks the CA about certificates not yet due (ari_watch.py) -------------------

    def ari_to_ask(
        self, now: int, limit: int, per_user: int = 50
    ) -> list[tuple[str, str, str, int]]:
        """(user, vhost, ARI id, chosen renewal time) of certificates not yet due whose CA may
        be asked again, those waiting longest first, at most `per_user` of one user (a user's
        worker reports them: one user's many must not crowd out everyone else's)."""
        cur = self.conn.execute(
            "SELECT user, vhost, cert_id, next_attempt FROM ("
            " SELECT a.user, a.vhost, a.cert_id, v.next_attempt, a.recheck_at, ROW_NUMBER() OVER"
            " (PARTITION BY a.user ORDER BY a.recheck_at) AS nth FROM ari a JOIN vhosts v"
            " ON v.user = a.user AND v.vhost = a.vhost"
            " WHERE v.status = 'not_due' AND a.recheck_at <= ?"
            ") WHERE nth <= ? ORDER BY recheck_at LIMIT ?",
            (now, per_user, limit),
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in cur]

    def ari_answered(self, user: str, vhost: str, next_attempt: int, recheck_at: int) -> None:
        """The CA's answer: visit the user at `next_attempt`, ask again at `recheck_at`."""
        self.conn.execute(
            "UPDATE vhosts SET next_attempt = ? WHERE user = ? AND vhost = ?",
            (next_attempt, user, vhost),
        )
        self.conn.execute(
            "UPDATE ari SET recheck_at = ? WHERE user = ? AND vhost = ?", (recheck_at, user, vhost)
        )

    # -- a worker's results, each in one transaction ------------------------------------------

    def record_report(self, user: str, skip: frozenset[str], report: UserReport, now: int) -> None:
        """Store what a worker reported: statuses, failures with their backoff, history. Rows of
        vhosts the record no longer holds (neither reported nor skipped) are dropped."""
        with self.transaction():
            before = {row.vhost: row for row in self.vhosts(user)}
            reported: set[str] = set()
            for out in report.outcomes:
                reported.add(out.vhost)
                old = before.get(out.vhost)
                failures, next_attempt, error = 0, 0, ""
                if out.action == "failed":
                    failures = (old.failures if old else 0) + 1
                    next_attempt = now + backoff_delay(failures)
                    error = out.error
                elif out.action == "not_due" and out.renew_at > 0:
                    # For a certificate not due, next_attempt is when its CA (ARI) wants it
                    # renewed: the daemon visits the user then, not only by lifetime.
                    next_attempt = out.renew_at
                fields = (out.vhost, out.action, out.names, out.not_before, out.not_after)
                row = VhostState(user, *fields, out.issuer, failures, error, now, next_attempt)
                self.put_vhost(row, now)
                if out.action == "not_due" and out.ari_id:
                    self.conn.execute(
                        "INSERT OR REPLACE INTO ari VALUES (?,?,?,?)",
                        (user, out.vhost, out.ari_id, out.ari_recheck),
                    )
                else:
                    self.conn.execute(
                        "DELETE FROM ari WHERE user = ? AND vhost = ?", (user, out.vhost)
                    )
                if out.issuer and out.action in ("renewed", "reinstalled", "not_due"):
                    self.add_issuer(out.issuer, now)
                changed = old is None or old.status != out.action
                if out.action in ("renewed", "reinstalled", "failed") or changed:
                    self.add_history(now, user, out.vhost, out.action, error)
            for vhost in set(before) - reported - skip:
                self.forget_vhost(user, vhost)
            self.put_user(UserState(user, now, 0, "", 0, report.disable_mail))
            self.trim_history()

    def record_failure(self, user: str, error: str, now: int) -> int:
        """The worker for `user` failed as a whole (timeout, crash, refused session): back off.
        Returns when to try again."""
        with self.transaction():
            old = self.user(user)
            failures = (old.failures if old else 0) + 1
            retry = now + backoff_delay(failures)
            disable_mail = old.disable_mail if old else False
            self.put_user(UserState(user, now, failures, error, retry, disable_mail))
            self.add_history(now, user, "", "worker_failed", error)
        return retry

    def next_retry(self, now: int) -> int:
        """The earliest future backoff end or ARI renewal time among vhosts and users (0: none)."""
        row = self.conn.execute(
            "SELECT MIN(t) FROM (SELECT next_attempt AS t FROM vhosts "
            "WHERE status IN ('failed', 'not_due') "
            "UNION ALL SELECT next_attempt AS t FROM users) WHERE t > ?",
            (now,),
        ).fetchone()
        return _int(row[0]) if row else 0


def daemon_pid(settings: Settings) -> int | None:
    """The running daemon's pid, or None. The daemon holds an exclusive flock on its pid file
    for its whole life, so a file left by a crash (kill -9, power cut) does not count."""
    try:
        fd = os.open(settings.daemon_pid_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        return None  # nobody holds it: stale
    finally:
        os.close(fd)


def _vhost_row(row: tuple[object, ...]) -> VhostState:
    try:
        names = tuple(str(n) for n in json.loads(str(row[3])))
    except (ValueError, TypeError):
        names = ()
    return VhostState(
        user=str(row[0]),
        vhost=str(row[1]),
        status=str(row[2]),
        names=names,
        not_before=_int(row[4]),
        not_after=_int(row[5]),
        issuer=str(row[6]),
        failures=_int(row[7]),
        last_error=str(row[8]),
        last_attempt=_int(row[9]),
        next_attempt=_int(row[10]),
    )


def _user_row(row: tuple[object, ...]) -> UserState:
    return UserState(
        user=str(row[0]),
        last_run=_int(row[1]),
        failures=_int(row[2]),
        last_error=str(row[3]),
        next_attempt=_int(row[4]),
        disable_mail=bool(row[5]),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
