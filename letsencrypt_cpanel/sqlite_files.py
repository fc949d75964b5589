"""Root's SQLite files (state, budgets): created 0600 in a 0700 folder, in WAL mode.

Several processes open them at once (the daemon, `le-cp`, the WHM page). Switching a new file to
WAL needs a moment of exclusive access that SQLite's busy timeout does not cover, so two first
openers can see "database is locked": the switch is retried briefly, and skipped when the file
is already in WAL mode (the mode is stored in the file).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

_WAL_ATTEMPTS = 100
_WAL_PAUSE = 0.05


def open_wal_database(
    path: Path, schema: str, *, synchronous_full: bool = False
) -> sqlite3.Connection:
    """A connection (autocommit; transactions are explicit) with `schema` applied. Raises
    OSError or sqlite3.Error."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Made 0600 here rather than under a umask: the umask is the whole process's, and the daemon
    # and the tests open these files from several threads at once. SQLite gives its -wal and
    # -shm files the database file's mode.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.close(fd)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        for attempt in range(_WAL_ATTEMPTS):
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                    raise
                time.sleep(_WAL_PAUSE)
        if synchronous_full:
            # FULL: a committed result survives a power cut too, not only a kill.
            conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(schema)
    except BaseException:
        conn.close()
        raise
    return conn
