"""Signalling the running daemon: SIGHUP after a setting changed (the WHM page, `le-cp`), SIGUSR1
for a cycle now (`le-cp daemon run-now`).

The pid comes from the daemon's pid file (`state.daemon_pid`: only while the daemon holds its
flock). Before the signal goes out, /proc must show that pid running `letsencrypt-cpaneld`:
a worker forked by a daemon that was then killed keeps the flock, and the pid in the file may
by then belong to some other process, which must never receive our signal.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .state import daemon_pid

DAEMON_NAME = "letsencrypt-cpaneld"


@dataclass(frozen=True)
class Signalled:
    """What became of one signal: `pid` is the daemon that got it, None when none runs."""

    pid: int | None
    problem: str = ""

    def describe_reread(self) -> str:
        """One sentence for the admin after a setting was saved."""
        if self.pid is not None:
            return f"the daemon (pid {self.pid}) rereads the settings now"
        if self.problem:
            return f"the daemon was not told: {self.problem}; restart it to apply this"
        return "no daemon is running; it reads the settings when it starts"


def is_our_daemon(pid: int, proc: Path = Path("/proc")) -> bool:
    """Whether process `pid` runs the daemon launcher (any argument is its path or name)."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return any(Path(arg.decode("utf-8", "replace")).name == DAEMON_NAME for arg in raw.split(b"\0"))


def signal_daemon(settings: Settings, signum: int) -> Signalled:
    """Send `signum` to the running daemon. Never raises: a missing daemon is `pid` None, and a
    pid file naming another process, or a signal we may not send, is `problem`."""
    pid = daemon_pid(settings)
    if pid is None:
        return Signalled(None)
    if not is_our_daemon(pid):
        return Signalled(None, f"pid {pid} in {settings.daemon_pid_file} is not {DAEMON_NAME}")
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return Signalled(None)  # it ended in between: it reads the settings when it starts
    except PermissionError:
        return Signalled(None, f"not allowed to signal pid {pid} (run as root)")
    return Signalled(pid)


def reread_settings(settings: Settings) -> Signalled:
    """Ask the running daemon to reread the config (SIGHUP): for every saved setting change."""
    return signal_daemon(settings, signal.SIGHUP)
