"""Root's SQLite files: several first openers at once all get a WAL database (no "locked")."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from letsencrypt_cpanel.sqlite_files import open_wal_database

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);"


def _open_it(path: Path, start: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        start.wait()
        conn = open_wal_database(path, SCHEMA, synchronous_full=True)
        conn.execute("INSERT OR IGNORE INTO t VALUES ('x')")
        conn.close()
    except BaseException as exc:
        errors.append(exc)


def test_many_first_openers_at_once(tmp_path: Path) -> None:
    for round_ in range(15):
        path = tmp_path / f"state-{round_}" / "db.sqlite3"
        errors: list[BaseException] = []
        start = threading.Barrier(8)
        threads = [threading.Thread(target=_open_it, args=(path, start, errors)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        conn = open_wal_database(path, SCHEMA)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
