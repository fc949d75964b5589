"""The launcher as the init systems run it: detached with a pid file (SysVinit), attached with
`--foreground` (systemd); SIGUSR1 runs a cycle now, SIGHUP rereads the config, SIGTERM stops
cleanly and removes the pid file; a pid file left by a crash does not block a start."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from letsencrypt_cpanel.config import Settings, load_settings
from letsencrypt_cpanel.root_service import RootServiceError, ask_root
from letsencrypt_cpanel.state import StateDB, daemon_pid
from tests.daemon.conftest import Bed


def _wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_detached_daemon_pid_file_and_signals(bed: Bed) -> None:
    bed.sandbox.add_user("solo", "solo.test", email="solo@mail.test")
    bed.issue("solo", "solo.test")
    bed.set("renewal_interval_hours", "1000")
    settings = load_settings({"LECP_ROOT": str(bed.root)})
    pid_file = settings.daemon_pid_file
    # A pid file left by a crash (nobody holds its lock) must not block the start.
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text("999999\n")

    started = bed.daemon()
    assert started.returncode == 0, started.stderr
    pid = daemon_pid(settings)  # written before the start command returned
    try:
        _signals_and_stop(bed, settings, pid)
    finally:
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)  # a failed test leaves no daemon behind


def _signals_and_stop(bed: Bed, settings: Settings, pid: int | None) -> None:
    pid_file, log_file = settings.daemon_pid_file, settings.daemon_log_file
    assert pid and _alive(pid) and pid_file.read_text() == f"{pid}\n"
    assert "running (pid" in bed.lecp.ok("daemon", "status")

    def cycles() -> int:
        return log_file.read_text().count("renewal cycle done") if log_file.exists() else 0

    _wait_for(lambda: cycles() >= 1, "the first cycle")
    assert log_file.stat().st_mode & 0o777 == 0o600
    second = bed.daemon()
    assert second.returncode != 0 and "already running" in second.stderr

    assert "Asked the daemon" in bed.lecp.ok("daemon", "run-now")  # SIGUSR1
    _wait_for(lambda: cycles() == 2, "the cycle SIGUSR1 asked for")
    bed.set("parallel_workers", "2")
    os.kill(pid, signal.SIGHUP)
    _wait_for(lambda: "configuration reread" in log_file.read_text(), "SIGHUP")

    os.kill(pid, signal.SIGTERM)
    _wait_for(lambda: not _alive(pid), "the daemon to stop")
    assert not pid_file.exists()
    assert "stopped" in log_file.read_text()
    assert "not running" in bed.lecp.ok("daemon", "status")


def _root_service_pid(daemon: int) -> int:
    """The daemon's root-socket service (a child running letsencrypt_cpanel.root_service)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat_fields[1]) == daemon and b"letsencrypt_cpanel.root_service" in cmdline:
            return int(entry.name)
    return 0


def test_foreground_daemon_logs_to_stderr_and_stops_on_sigterm(bed: Bed) -> None:
    bed.set("renewal_interval_hours", "1000")
    settings = load_settings({"LECP_ROOT": str(bed.root)})
    proc = bed.popen("--foreground")
    try:
        _wait_for(lambda: daemon_pid(settings) == proc.pid, "the pid file")

        def cycled() -> bool:
            with StateDB.open(settings) as db:
                return bool(db.meta("last_cycle"))

        _wait_for(cycled, "the first cycle")
        # The root socket answers while the daemon runs (EAB bindings for workers); it knows
        # its callers by SO_PEERCRED, and root is not a cPanel account.
        with pytest.raises(RootServiceError, match="not allowed"):
            ask_root(settings.root_socket, {"op": "ping"})
        # Its service killed, the daemon starts it again.
        service = _root_service_pid(proc.pid)
        assert service > 0  # never kill(0): that is the test's own process group
        os.kill(service, signal.SIGKILL)
        _wait_for(lambda: _root_service_pid(proc.pid) not in (0, service), "a new root service")

        def answering() -> bool:
            try:
                ask_root(settings.root_socket, {"op": "ping"})
            except RootServiceError as exc:
                return "not allowed" in str(exc)
            return False

        _wait_for(answering, "the root socket to answer again")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "renewal cycle done" in err and "stopped" in err
    assert not settings.daemon_pid_file.exists()
    assert not settings.daemon_log_file.exists()  # systemd: the journal has it all
