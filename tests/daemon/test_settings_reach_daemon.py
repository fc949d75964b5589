"""A setting changed with `le-cp` reaches the running daemon without a restart, as one saved on
the WHM page does: `le-cp` signals the daemon (SIGHUP) after every successful change and says
so; a pid file that names some other process gets no signal."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from letsencrypt_cpanel.config import Settings, load_settings
from letsencrypt_cpanel.state import daemon_pid
from tests.daemon.conftest import DAEMON, Bed
from tests.daemon.test_launcher import _wait_for
from tests.fixtures.lecp import LE_CP, REPO


def _secured(bed: Bed, name: str) -> bool:
    return "Pebble" in bed.sandbox.fetch_site_cert(name).issuer.rfc4514_string()


def test_le_cp_autossl_enable_is_picked_up_by_the_running_daemon(bed: Bed, tmp_path: Path) -> None:
    bed.set("renewal_interval_hours", "1000")  # no cycle of its own during the test
    bed.set("server_addresses", "127.0.0.1")
    bed.sandbox.add_user("hupauto", "hupauto.test")
    settings = load_settings({"LECP_ROOT": str(bed.root)})
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, str(DAEMON), "--foreground"],
            env=bed.lecp.env(), stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    try:
        _wait_for(lambda: daemon_pid(settings) == daemon.pid, "the daemon's pid file")
        # The first cycle: renewals, the service certificate (off), then AutoSSL (off: at once).
        _wait_for(lambda: "service certificate: disabled" in log.read_text(), "the first cycle")
        time.sleep(1)
        assert not _secured(bed, "hupauto.test")  # AutoSSL is off: nothing was done for it

        said = bed.lecp.ok("autossl", "enable")
        assert f"the daemon (pid {daemon.pid}) rereads the settings now" in said, said
        _wait_for(lambda: "configuration reread" in log.read_text(), "SIGHUP to be handled")
        # A cycle now, with the settings the daemon holds: AutoSSL secures the new account.
        bed.lecp.ok("daemon", "run-now")
        _wait_for(lambda: _secured(bed, "hupauto.test"), "AutoSSL in the daemon's cycle", 120)

        said = bed.lecp.ok("config", "set", "renewal_days", "10")
        assert f"renewal_days saved; the daemon (pid {daemon.pid}) rereads" in said
        _wait_for(lambda: log.read_text().count("configuration reread") == 2, "the second SIGHUP")
        said = bed.lecp.ok("hostcert", "add", "extra.sandbox.test")
        assert f"the daemon (pid {daemon.pid}) rereads" in said
        assert "the daemon's upkeep of the certificate is off (`le-cp hostcert enable`)" in said
        said = bed.lecp.ok("hostcert", "remove", "extra.sandbox.test")
        assert f"the daemon (pid {daemon.pid}) rereads" in said
        assert "stays on the current certificate until it is renewed" in said

        # A shorter interval counts from the last cycle, not after the old 1000 hours.
        cycles = log.read_text().count("renewal cycle done")
        bed.lecp.ok("config", "set", "renewal_interval_hours", "0.001")
        _wait_for(
            lambda: log.read_text().count("renewal cycle done") > cycles, "a cycle on its own", 60
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    said = bed.lecp.ok("autossl", "disable")
    assert "AutoSSL disabled; no daemon is running; it reads the settings when it starts" in said


def test_a_pid_file_naming_another_process_gets_no_signal(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    pid_file = settings.daemon_pid_file
    pid_file.parent.mkdir(parents=True)
    # Not the daemon: SIGHUP would end it.
    stranger = subprocess.Popen(["sleep", "60"])
    fd = os.open(pid_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held, as a live daemon (or its orphaned worker) holds it
        os.write(fd, f"{stranger.pid}\n".encode())
        proc = subprocess.run(
            [*LE_CP, "config", "set", "renewal_days", "5"],
            env={**os.environ, "LECP_ROOT": str(tmp_path), "PYTHONPATH": str(REPO)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"the daemon was not told: pid {stranger.pid}" in proc.stdout
        assert "is not letsencrypt-cpaneld" in proc.stdout
        time.sleep(0.5)
        assert stranger.poll() is None  # still running: it was not signalled
    finally:
        os.close(fd)
        stranger.kill()
        stranger.wait()
