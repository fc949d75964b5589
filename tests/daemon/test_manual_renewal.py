"""`le-cp ssl renew --user U` is a renewal like the daemon's: recorded in root's state (WHM's
"last renewal attempt"), the post-renewal hook run, the owner mailed; failures mailed too."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.daemon.conftest import Bed
from tests.daemon.test_failures import _redirect_everything


def _hook(bed: Bed) -> tuple[str, str]:
    seen = bed.root / "hook-saw.json"
    hook = bed.root / "post-renewal-hook"
    hook.write_text(f"#!/bin/sh\ncat > {seen}\n")
    hook.chmod(0o700)
    return str(hook), str(seen)


def test_le_cp_renew_records_runs_the_hook_and_mails_the_owner(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("byhand", "byhand.test", addons=["byhand-shop.test"], email="me@byhand.test")
    bed.issue("byhand", "byhand.test")
    bed.issue("byhand", "byhand-shop.test")
    hook, seen = _hook(bed)
    bed.set("post_renewal_hook", hook)
    started = int(time.time())

    proc = bed.lecp.run("ssl", "renew", "--user", "byhand", "--force", "--vhost", "byhand.test")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("byhand.test: renewed (expires "), proc.stdout
    assert "byhand-shop.test" not in proc.stdout  # --vhost: that website only

    summary = json.loads(Path(seen).read_text())
    assert summary["event"] == "renewed"
    assert [(r["user"], r["vhost"]) for r in summary["renewed"]] == [("byhand", "byhand.test")]
    mails = bed.mailbox.to("me@byhand.test")
    assert len(mails) == 1 and "renewed" in mails[0]["Subject"], mails
    assert "byhand.test" in mails[0].get_content()
    with bed.state() as db:
        rows = {r.vhost: r for r in db.vhosts("byhand")}
    assert rows["byhand.test"].status == "renewed"
    assert rows["byhand.test"].last_attempt >= started

    # All of the user's websites now; the row of the one renewed by --vhost was kept meanwhile.
    proc = bed.lecp.run("ssl", "renew", "--user", "byhand", "--force")
    assert proc.returncode == 0, proc.stderr
    with bed.state() as db:
        assert {r.vhost: r.status for r in db.vhosts("byhand")} == {
            "byhand.test": "renewed",
            "byhand-shop.test": "renewed",
        }
    assert len(bed.mailbox.to("me@byhand.test")) == 2


def test_le_cp_renew_failure_is_recorded_and_mailed_once(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("byfail", "byfail.test", email="me@byfail.test")
    bed.issue("byfail", "byfail.test")
    hook, seen = _hook(bed)
    bed.set("post_renewal_hook", hook)
    _redirect_everything(bed, "byfail")  # the ACME challenge too: http-01 cannot succeed

    for _ in range(2):
        proc = bed.lecp.run("ssl", "renew", "--user", "byfail", "--force")
        assert proc.returncode == 1 and proc.stdout.startswith("byfail.test: failed"), proc
    with bed.state() as db:
        row = db.vhost("byfail", "byfail.test")
    assert row is not None and row.status == "failed" and row.failures == 2
    mails = bed.mailbox.to("me@byfail.test")
    assert len(mails) == 1, mails  # a failure is mailed at most once per 48 hours
    assert "could not be renewed" in mails[0].get_content()
    assert not os.path.exists(seen)  # nothing renewed: no hook
