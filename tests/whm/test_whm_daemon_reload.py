"""An option saved on the WHM page reaches the running daemon without a restart: the page
writes the config and sends SIGHUP to the pid in the daemon's pid file; the real daemon
(`daemon/letsencrypt-cpaneld --foreground`) logs that it reread it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from letsencrypt_cpanel.config import load_secrets, load_settings
from letsencrypt_cpanel.state import daemon_pid
from tests.fixtures.sandbox import RunningSandbox
from tests.whm.pages import REPO, WhmClient, install_whm_page

DAEMON = REPO / "daemon" / "letsencrypt-cpaneld"


def _wait_for(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _le_cp(root: Path, *args: str, stdin: str | None = None) -> None:
    env = {**os.environ, "LECP_ROOT": str(root), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "letsencrypt_cpanel.cli", *args],
        env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_saved_options_are_reread_by_the_running_daemon(
    fresh_sandbox: Callable[..., RunningSandbox], tmp_path: Path
) -> None:
    sandbox = fresh_sandbox()
    root = sandbox.root
    _le_cp(root, "config", "set", "whm_token", stdin=sandbox.whm_token + "\n")
    _le_cp(root, "config", "set", "renewal_interval_hours", "1000")
    install_whm_page(sandbox)
    settings = load_settings({"LECP_ROOT": str(root)})
    log = tmp_path / "daemon.log"
    env = {**os.environ, "LECP_ROOT": str(root), "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, str(DAEMON), "--foreground"],
            env=env, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    try:
        _wait_for(lambda: daemon_pid(settings) == daemon.pid, "the daemon's pid file")
        _wait_for(lambda: "renewal cycle" in log.read_text(), "the daemon's first cycle")
        client = WhmClient.login(sandbox)

        body = {"action": "save_options", "renewal_days": 12, "smtp_password": "s3cret-pw"}
        reply = client.post(json_body=body, json_api=True)
        assert reply.status == 200, reply.body[:500]
        data = reply.json()["data"]
        assert data == {"changed": ["renewal_days", "smtp_password"], "daemon_pid": daemon.pid}
        _wait_for(lambda: "configuration reread" in log.read_text(), "SIGHUP to be handled")
        saved = load_settings({"LECP_ROOT": str(root)})
        assert saved.renewal_days == 12
        assert load_secrets(saved).smtp_password == "s3cret-pw"
        assert "s3cret-pw" not in log.read_text()

        # The page's own form: a redirect that says the daemon rereads it now.
        form = client.csrf_token()
        options = client.data({"action": "options"})["options"]
        assert options["smtp_password"] is True and options["renewal_days"] == 12
        reply = client.post(
            {"action": "save_options", "renewal_days": "14", "send_success_mail": "1",
             "send_failure_mail": "1", "smtp_starttls": "1", "hostcert_enabled": "1",
             "autossl_proxy_subdomains": "1", "form": "options"},
            csrf=form,
        )  # fmt: skip
        assert reply.status == 303 and (reply.header("Location") or "").endswith("saved=hup")
        _wait_for(lambda: log.read_text().count("configuration reread") == 2, "the second SIGHUP")
        assert load_settings({"LECP_ROOT": str(root)}).renewal_days == 14
        assert "The daemon rereads the options now" in client.html(
            {"action": "options", "saved": "hup"}
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    # Stopped: a save says the daemon will read it when it starts.
    reply = client.post(json_body={"action": "save_options", "renewal_days": 15}, json_api=True)
    assert reply.status == 200 and reply.json()["data"]["daemon_pid"] is None
