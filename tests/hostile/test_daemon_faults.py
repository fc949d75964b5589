"""The root daemon's renewal cycle (`letsencrypt-cpaneld --once`, a real subprocess) with its
mail server down, and (detached, logging to its file) sampled for secrets while it renews.

Each test has a bed of its own (tests/daemon/conftest.py): a sandbox, a Pebble issuing 20-day
certificates (due at once with `renewal_days` 30), and a real SMTP server on loopback."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.state import daemon_pid
from tests.conftest import free_port
from tests.daemon.conftest import Bed
from tests.hostile.test_no_secret_leaks import Sampler, key_fragments, record_keys


def renewable_user(bed: Bed, user: str) -> None:
    bed.sandbox.add_user(user, f"{user}.test", email=f"{user}@mail.test")
    bed.issue(user, f"{user}.test")
    bed.set("renewal_days", "30")


def test_smtp_down_the_renewal_still_succeeds(bed: Bed) -> None:
    renewable_user(bed, "mailless")
    before = bed.sandbox.fetch_site_cert("mailless.test")
    bed.set("smtp_port", str(free_port()))  # nothing listens there: the mail server is down

    out = bed.once()
    assert "1 renewed" in out, out
    after = bed.sandbox.fetch_site_cert("mailless.test")
    assert after.serial_number != before.serial_number
    assert "not sent" in out and "Traceback" not in out, out
    assert bed.mailbox.messages == []


def test_smtp_down_the_mail_is_sent_by_a_later_cycle(bed: Bed) -> None:
    renewable_user(bed, "mailretry")
    port = load_settings({"LECP_ROOT": str(bed.root)}).smtp_port
    bed.set("smtp_port", str(free_port()))
    assert "1 renewed" in bed.once()
    bed.set("smtp_port", str(port))  # the mail server is back
    bed.set("renewal_days", "0")  # and the fresh certificate is not due again
    out = bed.once()
    assert "0 renewed" in out, out  # nothing renewed again: the mail alone was owed
    mails = bed.mailbox.to("mailretry@mail.test")
    assert len(mails) == 1 and "mailretry.test" in mails[0].get_content()
    bed.once()
    assert len(bed.mailbox.to("mailretry@mail.test")) == 1, "sent once, not again"


def detached_cycle(bed: Bed, log: Path) -> str:
    """Start the daemon as SysVinit does (detached, logging to its file), wait for its first
    cycle, stop it; returns the log."""
    started = bed.daemon()
    assert started.returncode == 0, started.stderr
    pid = daemon_pid(load_settings({"LECP_ROOT": str(bed.root)}))
    assert pid
    try:
        deadline = time.monotonic() + 120
        while "renewal cycle done" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the daemon's cycle did not finish"
            time.sleep(0.1)
        os.kill(pid, signal.SIGTERM)
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)  # a failed test leaves no daemon behind
    return log.read_text(errors="replace")


def test_a_renewal_cycle_puts_no_secret_in_argv_environ_log_or_mail(bed: Bed) -> None:
    for n in range(3):
        renewable_user(bed, f"leaky{n}")
    bed.set("renewal_interval_hours", "1000")  # one cycle while it runs
    password = "smtp-" + "S3cr3t" * 4
    log = load_settings({"LECP_ROOT": str(bed.root)}).daemon_log_file

    samplers = Sampler.running(bed.root / "var/cpanel/sessions")
    sampler = next(samplers)
    try:
        # The admin sets the secret (read from standard input, never argv) while sampled too.
        proc = bed.lecp.run("config", "set", "smtp_password", input_text=password + "\n")
        assert proc.returncode == 0, proc.stderr
        out = detached_cycle(bed, log)
    finally:
        next(samplers, None)
    assert "3 renewed" in out, out
    assert sampler.rounds > 5 and sampler.sessions

    keys = [k for n in range(3) for k in key_fragments(record_keys(bed.sandbox, f"leaky{n}"))]
    secrets = [bed.sandbox.whm_token, password, *keys, *sampler.session_secrets()]
    mails = [m.as_string() for _, m in bed.mailbox.messages]
    texts = [t.decode("latin-1") for t in sampler.texts]
    texts += [t.decode("latin-1") for t in sampler.cgi_environments]
    places = {"argv/environ": texts, "daemon log": [out], "mail": mails}
    for place, blobs in places.items():
        blob = "\n".join(blobs)
        assert "PRIVATE KEY-----" not in blob, place
        for secret in secrets:
            if len(secret) >= 16:
                assert secret not in blob, f"a secret appeared in {place}"
    settings_text = json.dumps(load_settings({"LECP_ROOT": str(bed.root)}).__dict__, default=str)
    assert password not in settings_text  # the public settings never carry it
