"""Batched Apache restarts: one `restartsrv_httpd` after a batch of workers, not one per installed
certificate.

cPanel restarts Apache after every `install_ssl`; on a server with hundreds of sites a cycle would
restart it hundreds of times. While the flag file `/var/cpanel/mgmt_queue/apache_update_no_restart`
exists, cPanel's install leaves Apache alone (prior-art §4.9), so root holds that flag around a
batch of installs and restarts Apache once at its end when something was installed. The flag is
server-wide: it also keeps a user's own install on the cPanel page from being served, so it is
held per batch of workers (never a whole cycle), and a batch ends with a restart also when any
vhost's certificate changed under it, whoever installed it.

Several holders may overlap (the daemon's cycle and an admin's `le-cp autossl run`): each holder
is a token file in a root-only folder under /var/run, the flag exists while any holder does, and the
last one out removes the flag and restarts. Like FleetSSL, the flag file holds a token and is
removed only while it still holds ours, so a flag someone else wrote is never taken away. A
holder that died (kill -9) is recognised by its pid and swept by the next one.

`exclusive` keeps one run at a time of a job that may start from two places (the daemon's
cycle, an admin's `le-cp`): two runs would order the same certificates twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .config import Settings
from .errors import Error

log = logging.getLogger(__name__)

FLAG_PATH = "/var/cpanel/mgmt_queue/apache_update_no_restart"
# Each vhost's installed certificate, one folder per servername (cpanel-api.md §4 SSL storage).
APACHE_TLS_DIR = "/var/cpanel/ssl/apache_tls"
# File times come from the kernel's coarse clock, a little behind time.time(): look back this far
# (a restart too many is harmless; a missed one leaves an old certificate served).
CLOCK_SLACK = 0.05
RESTART_SCRIPT = "/usr/local/cpanel/scripts/restartsrv_httpd"
# Runtime state: a reboot ends every holder, so the folder lives under /var/run.
HOLDERS_DIR = "/var/run/letsencrypt-cpanel-no-restart"
STALE_AFTER = 6 * 3600
_TOKEN_PREFIX = "letsencrypt-cpanel:"  # noqa: S105 - a marker, not a secret


@dataclass
class RestartBatch:
    """Handed to the code inside `deferred_restarts`: call `installed()` after an install."""

    needs_restart: bool = False
    restarted: bool = False

    def installed(self) -> None:
        self.needs_restart = True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Busy(Error):
    """Another run of the same job holds its lock."""


@contextlib.contextmanager
def exclusive(settings: Settings, lock_name: str, what: str) -> Iterator[None]:
    """One run of a job at a time (the daemon's cycle and an admin's `le-cp` run of AutoSSL or
    the service certificate would order twice): a flock in the state dir, not waited for.
    Raises Busy."""
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = settings.state_dir / lock_name
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(
                f"{what} is running already (the daemon's cycle?); try again later"
            ) from None
        yield
    finally:
        os.close(fd)


def _live_holders(folder: Path) -> list[Path]:
    """Holder files of processes still alive; the others (crashed holders) are removed. A holder
    older than STALE_AFTER counts as dead whatever its pid says (the pid may have been reused):
    a flag that never goes away would stop cPanel restarting Apache for everyone's installs."""
    live = []
    for path in folder.iterdir():
        name = path.name
        if name.startswith("."):
            continue
        pid_text = name.split("-", 1)[0]
        try:
            fresh = time.time() - path.lstat().st_mtime < STALE_AFTER
        except FileNotFoundError:
            continue
        if fresh and pid_text.isdigit() and _alive(int(pid_text)):
            live.append(path)
        else:
            path.unlink(missing_ok=True)
    return live


def _write_flag(flag: Path, token: str) -> None:
    flag.parent.mkdir(parents=True, exist_ok=True)
    tmp = flag.with_name(f".{flag.name}.{os.getpid()}")
    tmp.write_text(token + "\n", encoding="ascii")
    os.replace(tmp, flag)


def _remove_flag_if_ours(flag: Path) -> None:
    try:
        text = flag.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return
    if text.startswith(_TOKEN_PREFIX):
        flag.unlink(missing_ok=True)


def vhost_certificates_changed_since(settings: Settings, since: float) -> str:
    """Which vhost's certificate (a path; "" = none) was installed, replaced or removed at or
    after `since`, by anyone: a user's own install on the cPanel page under our flag got no
    restart either."""
    base = settings.path(APACHE_TLS_DIR)
    try:
        if base.stat().st_mtime >= since:
            return str(base)  # a vhost's folder added or removed
        with os.scandir(base) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                combined = os.path.join(entry.path, "combined")
                if entry.stat(follow_symlinks=False).st_mtime >= since:
                    return entry.path
                if os.stat(combined, follow_symlinks=False).st_mtime >= since:
                    return combined
    except FileNotFoundError:
        return ""
    except OSError as exc:
        log.warning("%s could not be read (%s): Apache is restarted to be safe", base, exc)
        return str(base)
    return ""


def restart_apache(settings: Settings) -> bool:
    """Run cPanel's `restartsrv_httpd` once; False (logged) when it failed."""
    script = settings.path(RESTART_SCRIPT)
    try:
        proc = subprocess.run(
            [str(script)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("Apache was not restarted (%s): %s", script, exc)
        return False
    if proc.returncode != 0:
        log.warning("%s failed (%d): %s", script, proc.returncode, proc.stderr.strip()[:500])
        return False
    return True


@contextlib.contextmanager
def deferred_restarts(settings: Settings) -> Iterator[RestartBatch]:
    """Hold cPanel's no-restart flag for the block; at the end, restart Apache once if the block
    reported an install (`batch.installed()`) or any vhost's certificate changed meanwhile (a
    user's own install, which the flag kept from restarting Apache). The flag is removed when no
    other holder remains, and the restart done, also when the block raises."""
    folder = settings.path(HOLDERS_DIR)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    flag = settings.path(FLAG_PATH)
    me = folder / f"{os.getpid()}-{secrets.token_hex(8)}"
    since = time.time() - CLOCK_SLACK
    with _locked(folder):
        me.write_text("", encoding="ascii")
        _write_flag(flag, _TOKEN_PREFIX + me.name)
    batch = RestartBatch()
    try:
        yield batch
    finally:
        with _locked(folder):
            me.unlink(missing_ok=True)
            others = _live_holders(folder)
            # Another holder still installing keeps the flag; our installs get our own restart
            # now (one more restart is harmless, a missed one leaves old certificates served).
            if not others:
                _remove_flag_if_ours(flag)
        changed = "" if batch.needs_restart else vhost_certificates_changed_since(settings, since)
        if changed:
            log.info("Apache restarted for a certificate installed under the flag: %s", changed)
        if batch.needs_restart or changed:
            batch.restarted = restart_apache(settings)


T = TypeVar("T")
R = TypeVar("R")


def in_rolling_holds(
    settings: Settings,
    items: Iterable[T],
    start: Callable[[T], R],
    settle: Callable[[T, Future[R], RestartBatch], None],
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[list[RestartBatch], int]:
    """`start(item)` for every item, `parallel_workers` at a time, under cPanel's no-restart flag
    held for about `apache_restart_batch_seconds` at a time and then let go (one Apache restart
    for what was installed meanwhile): a big server's cycle restarts Apache a few times, not once
    per certificate, and a user's own install meanwhile is served within about that long. The
    workers never wait for a hold to end, and no hold waits for a batch: a worker starts as soon
    as another is done. Each finished item is `settle`d here, in this thread, with the hold it
    finished under (tell it `installed()`). Once `should_stop()` says so, no new item starts.
    Returns every hold and how many items never started."""
    queue = list(items)
    queue.reverse()  # popped from the end: the first item first
    holds: list[RestartBatch] = []
    if not queue:
        return holds, 0  # no hold at all: an idle cycle writes no flag and scans no folder
    with ThreadPoolExecutor(max_workers=settings.parallel_workers) as pool:
        pending: dict[Future[R], T] = {}

        def fill() -> None:
            while queue and len(pending) < settings.parallel_workers and not should_stop():
                item = queue.pop()
                pending[pool.submit(start, item)] = item

        while True:
            with deferred_restarts(settings) as hold:
                holds.append(hold)
                ends = time.monotonic() + settings.apache_restart_batch_seconds
                fill()
                while pending:
                    left = ends - time.monotonic()
                    # 0 s holds: each ends with the next worker done, never in a busy loop.
                    done, _ = wait(
                        pending, timeout=left if left > 0 else None, return_when=FIRST_COMPLETED
                    )
                    for future in done:
                        settle(pending.pop(future), future, hold)
                    if time.monotonic() >= ends:
                        break  # the next workers start under the next hold
                    fill()
            if not pending and (not queue or should_stop()):
                return holds, len(queue)
