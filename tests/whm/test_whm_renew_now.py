"""WHM's "renew now" is a renewal like the daemon's: recorded in root's state (the page's "last
renewal attempt"), the post-renewal hook run, the owner mailed, one Apache restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.automation.conftest import Bed, make_bed
from tests.whm.pages import WhmClient, install_whm_page


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    """A sandbox of its own, with a loopback SMTP server (the session's sandbox has none)."""
    yield from make_bed(tmp_path)


def test_renew_now_records_runs_the_hook_and_mails_the_owner(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("whmnow", "whmnow.test", email="owner@whmnow.test")
    bed.issue("whmnow", "whmnow.test", "www.whmnow.test")
    seen = bed.root / "hook-saw.json"
    hook = bed.root / "post-renewal-hook"
    hook.write_text(f"#!/bin/sh\ncat > {seen}\n")
    hook.chmod(0o700)
    bed.set("post_renewal_hook", str(hook))
    install_whm_page(sb)
    client = WhmClient.login(sb)
    started = int(time.time())

    reply = client.post({"action": "renew", "user": "whmnow", "force": "1"})
    assert reply.status == 200, reply.body[:800]
    assert "whmnow.test: renewed (expires" in reply.body.decode()

    summary = json.loads(seen.read_text())
    assert summary["event"] == "renewed"
    assert [(r["user"], r["vhost"]) for r in summary["renewed"]] == [("whmnow", "whmnow.test")]
    assert summary["renewed"][0]["names"] == ["whmnow.test", "www.whmnow.test"]
    assert summary["renewed"][0]["not_after"] > started
    mails = bed.mailbox.to("owner@whmnow.test")
    assert len(mails) == 1 and "renewed" in mails[0]["Subject"], mails
    assert "whmnow.test" in mails[0].get_content() and mails[0]["From"] == "daemon@server.test"
    with bed.state() as db:
        row = db.vhost("whmnow", "whmnow.test")
        user = db.user("whmnow")
    assert row is not None and row.status == "renewed" and row.last_attempt >= started
    assert user is not None and user.last_run >= started
    assert bed.commands("restartsrv_httpd") == 1  # the installs under one no-restart flag
