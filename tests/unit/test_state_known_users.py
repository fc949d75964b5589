"""StateDB.known_users: every user the state has a row for, as the daemon's cycle end needs
to forget removed accounts without reading every vhost row (bench/bench_cycle_idle.py)."""

from __future__ import annotations

from pathlib import Path

from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.state import StateDB, UserState, VhostState


def test_known_users_are_those_of_both_tables(tmp_path: Path) -> None:
    with StateDB.open(Settings(root=tmp_path)) as db:
        assert db.known_users() == set()
        with db.transaction():
            for user, vhost in [("alice", "a.test"), ("alice", "b.test"), ("bob", "c.test")]:
                row = VhostState(user, vhost, "not_due", (vhost,), 1, 2, "CA", 0, "", 0, 0)
                db.put_vhost(row, 10)
            db.put_user(UserState("bob", 10, 0, "", 0, False))
            db.put_user(UserState("carol", 10, 1, "worker failed", 99, False))
        assert db.known_users() == {"alice", "bob", "carol"}
        with db.transaction():
            db.forget_user("alice")
        assert db.known_users() == {"bob", "carol"}
