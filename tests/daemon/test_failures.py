"""A failing website is mailed once, retried with backoff, and never holds up the others; a
hanging worker is killed at its timeout and the others proceed."""

from __future__ import annotations

import os
import time

from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.renewal import run_once
from letsencrypt_cpanel.state import HOUR, StateDB
from tests.daemon.conftest import Bed


def _redirect_everything(bed: Bed, user: str) -> None:
    htaccess = bed.home(user) / "public_html" / ".htaccess"
    htaccess.write_text("Redirect 301 / http://elsewhere.test/\n")
    uid = bed.home(user).stat().st_uid
    os.chown(htaccess, uid, uid)
    bed.forget_acme_account(user)


def test_failing_vhost_is_mailed_once_and_backed_off(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("good", "good.test", email="good@mail.test")
    sb.add_user("bad", "bad.test", email="bad@mail.test")
    bed.issue("good", "good.test")
    bed.issue("bad", "bad.test")
    _redirect_everything(bed, "bad")
    bed.set("renewal_days", "30")
    started = time.time()

    out = bed.once()
    assert "1 renewed, 1 failed" in out, out
    failed = bed.mailbox.to("bad@mail.test")
    assert len(failed) == 1
    assert "failed" in failed[0]["Subject"] and "bad.test" in failed[0]["Subject"]
    body = failed[0].get_content()
    assert "could not be renewed" in body and ".htaccess" in body and "reason:" in body
    assert "bad.test" in body
    # HTTP failed and DNS was tried too: the mail names no single method, both advices stand.
    assert "DNS zone was tried too" in body and "names checked" not in body
    with bed.state() as db:
        row = db.vhost("bad", "bad.test")
        assert row is not None and row.status == "failed" and row.failures == 1
        assert row.last_error
        assert started + HOUR - 5 <= row.next_attempt <= time.time() + HOUR + 5
        assert db.vhost("good", "good.test").status == "renewed"  # type: ignore[union-attr]

    # Right after: the failing site is left alone (backoff), not mailed again; the other renews.
    out = bed.once()
    assert "1 renewed, 0 failed" in out, out
    assert len(bed.mailbox.to("bad@mail.test")) == 1
    assert len(bed.mailbox.to("good@mail.test")) == 2
    with bed.state() as db:
        assert db.vhost("bad", "bad.test").failures == 1  # type: ignore[union-attr]

    # Two hours later it is due again: tried, failed, backed off longer, still not mailed (48 h).
    settings = load_settings({"LECP_ROOT": str(bed.root)})
    later = time.time() + 2 * HOUR
    with StateDB.open(settings) as db:
        result = run_once(later, settings, db)
        assert ("bad", "bad.test") in result.failed
        row = db.vhost("bad", "bad.test")
        assert row is not None and row.failures == 2
        assert row.next_attempt == int(later) + 2 * HOUR
    assert len(bed.mailbox.to("bad@mail.test")) == 1


def test_a_hanging_worker_is_killed_and_the_others_renew(bed: Bed) -> None:
    sb = bed.sandbox
    users = ["hang1", "hang2", "hang3"]
    for user in users:
        sb.add_user(user, f"{user}.test", email=f"{user}@mail.test")
        bed.issue(user, f"{user}.test")
    bed.set("renewal_days", "30")
    bed.set("worker_timeout", "4")
    # The first worker to ask cPanel for its domains gets no answer at all.
    sb.set_fault("DomainInfo::domains_data", "timeout", times=1)
    started = time.monotonic()
    out = bed.once()
    assert time.monotonic() - started < 25
    assert "2 renewed" in out and "1 worker failure(s)" in out, out
    with bed.state() as db:
        hung = [u for u, s in db.users().items() if s.failures]
        assert len(hung) == 1
        assert "longer than 4 s" in db.user(hung[0]).last_error  # type: ignore[union-attr]
        renewed = {r.user for r in db.vhosts() if r.status == "renewed"}
    assert renewed == set(users) - set(hung)
