"""A cycle forgets what root's state holds for accounts WHM no longer lists, and keeps the rest
(asked with one query: a big server's every vhost row is never read for it, bench/)."""

from __future__ import annotations

from letsencrypt_cpanel.state import UserState, VhostState
from tests.daemon.conftest import Bed


def test_once_forgets_accounts_that_are_gone(bed: Bed) -> None:
    bed.sandbox.add_user("alice", "alice.test")
    bed.issue("alice", "alice.test")
    with bed.state() as db, db.transaction():
        gone = VhostState("gone", "gone.test", "not_due", ("gone.test",), 1, 2, "CA", 0, "", 0, 0)
        db.put_vhost(gone, 1)
        db.put_user(UserState("gone", 1, 0, "", 0, False))
        db.put_user(UserState("left", 1, 2, "worker failed", 0, False))

    assert "1 user(s) run" in bed.once()

    with bed.state() as db:
        assert db.known_users() == {"alice"}
        assert [row.vhost for row in db.vhosts("alice")] == ["alice.test"]
        assert db.vhosts("gone") == [] and db.user("left") is None
