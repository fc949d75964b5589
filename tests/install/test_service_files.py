"""The service definitions for real: the installed systemd unit passes `systemd-analyze verify`
(its ExecStart is the installed daemon under the test root), and the installed SysV script
starts, reports and stops the real daemon with its pid file under the test root."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.install.conftest import Server


def test_installed_unit_passes_systemd_analyze_verify(server: Server) -> None:
    server.use_systemd()
    server.install()
    unit = server.path("/etc/systemd/system/letsencrypt-cpanel.service")
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    # Lines about other units on this host are not about ours.
    ours = [line for line in proc.stderr.splitlines() if "letsencrypt-cpanel" in line]
    assert proc.returncode == 0 and not ours, proc.stderr


def init_script(server: Server, action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(server.path("/etc/init.d/letsencrypt-cpanel")), action],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "LECP_ROOT"},  # as `service` runs it
    )


@pytest.mark.root
def test_sysvinit_script_starts_reports_and_stops_the_daemon(server: Server) -> None:
    server.use_sysvinit()  # install.sh's own `service start` is only recorded
    server.install()
    pid_file = server.path("/var/run/letsencrypt-cpanel.pid")
    assert init_script(server, "status").returncode == 3  # stopped (LSB)

    started = init_script(server, "start")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        pid = int(pid_file.read_text())
        assert b"letsencrypt-cpaneld" in Path(f"/proc/{pid}/cmdline").read_bytes()
        status = init_script(server, "status")
        assert status.returncode == 0 and f"running (pid {pid})" in status.stdout
        assert "already running" in init_script(server, "start").stdout

        stopped = init_script(server, "stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not os.path.exists(f"/proc/{pid}")
        assert init_script(server, "status").returncode == 3
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    # The daemon detached and logged to its file under the root.
    deadline = time.monotonic() + 5
    log = server.path("/var/log/letsencrypt-cpanel.log")
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "started" in log.read_text()
