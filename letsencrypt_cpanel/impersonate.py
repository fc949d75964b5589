"""Root runs one user's job as that user: fork, drop privileges for good, pipe back a summary.

ARCHITECTURE.md, "Who runs what, and as whom": root never opens a file in a user's home; it
forks a worker that becomes the user (setgroups, setgid, setuid, no way back), is non-dumpable
(so the user cannot ptrace it or read its memory through /proc), and reports one JSON summary
over a pipe. Root reads that summary as untrusted input: bounded in size and depth, strict JSON,
one expected shape. Anything else is a `WorkerError`; the worker is killed at its deadline.

Secrets: the child starts as a copy of root's memory. Pass the job only what it needs (a closure
over a user session, not the WHM token), keep root's secrets out of the closure, and wipe what
can be wiped (e.g. a bytearray holding a token, a root-only connection) in `before_drop`, which
runs in the child before the drop. The child's environment is cut to `KEPT_ENVIRONMENT`.

Fork safety: call this from the thread that owns the work, with no other thread holding a lock
the job needs (the child gets only the calling thread). OpenSSL's locks are the ones that bit:
the fork waits for root's TLS calls in other threads to end (fork_gate.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import json
import os
import re
import resource
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TypeAlias

from .errors import Error, WorkerError, WorkerTimeout
from .fork_gate import forking
from .system_users import SystemUser

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None

MAX_SUMMARY_BYTES = 1024 * 1024
MAX_SUMMARY_DEPTH = 64
MAX_ERROR_CHARS = 4000
MAX_KIND_CHARS = 100
# The pipe to root, in the child. A job must not write to it (it is how the tests play a
# compromised job); only `run_as_user` writes the summary there.
_summary_fd = -1  # the summary pipe, in a worker (summary_fd)
KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LECP_ROOT")

_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_CHILD_FAILED = 70  # EX_SOFTWARE: the child could not even send a summary
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")
_SIGNAL_NUMBERS = frozenset(int(sig) for sig in signal.Signals)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class JobFailed(WorkerError):
    """The job ran as the user and raised one of our errors; its message is this one's."""

    def __init__(self, user: str, message: str, kind: str) -> None:
        self.user = user
        self.kind = kind  # the error's class name in the child (untrusted: for logs only)
        super().__init__(message)


def run_as_user(
    user: SystemUser,
    job: Callable[[], JSONValue],
    *,
    timeout: float,
    groups: Sequence[int] = (),
    before_drop: Callable[[], None] | None = None,
) -> JSONValue:
    """Run `job()` in a child that is `user` (uid, gid, exactly `groups`), return its result.

    The child: signal handlers reset, fds closed but the summary pipe (stdin and stdout on
    /dev/null, stderr kept for tracebacks), `before_drop()` run as root, groups/gid/uid set and
    checked irreversible, non-dumpable, umask 022, in the user's home, HOME/USER/LOGNAME set,
    then `job()`; it never returns into the caller's code.
    Raises JobFailed (the job raised our Error: same message), WorkerTimeout (killed, with its
    process group, after `timeout` seconds), WorkerError (refused user, crash, signal, or
    anything that is not a summary). Must be called as root.
    """
    if os.geteuid() != 0:
        raise WorkerError("Only root can run a job as another user.")
    if user.uid == 0 or user.gid == 0 or 0 in groups:
        raise WorkerError(f"A job for {user.name} would run with root's uid or group; refused.")
    if timeout <= 0:
        raise WorkerError(f"The job for {user.name} needs a positive timeout.")
    read_fd, write_fd = os.pipe()
    try:
        with forking():  # never beside another thread's TLS call (fork_gate.py)
            pid = os.fork()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        raise WorkerError(f"The job for {user.name} could not start: {exc.strerror}.") from exc
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        os.close(read_fd)
        _child(user, job, list(groups), before_drop, write_fd)
    os.close(write_fd)
    with contextlib.suppress(OSError):
        # Also done in the child; whichever runs first wins, so the kill below never misses.
        os.setpgid(pid, pid)
    try:
        data, status = _collect(pid, read_fd, user.name, timeout)
    finally:
        os.close(read_fd)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in _SIGNAL_NUMBERS else f"signal {number}"
        raise WorkerError(f"The job for {user.name} was killed by {name}.")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise WorkerError(f"The job for {user.name} ended with exit status {code}.")
    return parse_summary(data, user.name)


def parse_summary(data: bytes, user_name: str) -> JSONValue:
    """The job's result from the child's summary bytes (untrusted). Raises JobFailed or
    WorkerError as `run_as_user` documents."""
    if not data:
        raise WorkerError(f"The job for {user_name} ended without a summary.")
    not_a_summary = WorkerError(
        f"The job for {user_name} sent back something that is not a summary"
    )
    if len(data) > MAX_SUMMARY_BYTES:
        raise not_a_summary
    try:
        text = data.decode("utf-8")
        if _nesting_exceeds(text, MAX_SUMMARY_DEPTH):
            raise not_a_summary
        summary = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_dupes)
    except (ValueError, RecursionError):
        raise not_a_summary from None
    if not isinstance(summary, dict) or not isinstance(summary.get("ok"), bool):
        raise not_a_summary
    if summary["ok"] and set(summary) == {"ok", "result"}:
        result: JSONValue = summary["result"]
        return result
    if not summary["ok"] and set(summary) == {"ok", "error", "kind"}:
        error, kind = summary["error"], summary["kind"]
        if (
            isinstance(error, str)
            and isinstance(kind, str)
            and 0 < len(error) <= MAX_ERROR_CHARS
            and len(kind) <= MAX_KIND_CHARS
        ):
            raise JobFailed(user_name, _CONTROL.sub(" ", error), _CONTROL.sub(" ", kind))
    raise not_a_summary


# -- the parent ------------------------------------------------------------------------------


def _collect(pid: int, read_fd: int, user_name: str, timeout: float) -> tuple[bytes, int]:
    """Read the summary (bounded) and reap the child, both within the deadline. On any way out
    but a reaped child (timeout, too much output, Ctrl-C in `le-cp`), the child is killed."""
    deadline = time.monotonic() + timeout
    try:
        data = _read_bounded(read_fd, user_name, timeout, deadline)
        pause = 0.001
        while True:
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                # The caller ignores SIGCHLD, so the kernel reaped the child and its status is
                # gone: the summary alone decides.
                return data, 0
            if reaped:
                return data, status
            if time.monotonic() >= deadline:
                raise WorkerTimeout(user_name, timeout)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
    except BaseException:
        _kill(pid)
        raise


def _read_bounded(read_fd: int, user_name: str, timeout: float, deadline: float) -> bytes:
    poller = select.poll()
    poller.register(read_fd, select.POLLIN | select.POLLHUP)
    data = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkerTimeout(user_name, timeout)
        if not poller.poll(max(1, int(remaining * 1000))):
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > MAX_SUMMARY_BYTES:
            raise WorkerError(
                f"The job for {user_name} sent back something that is not a summary "
                f"(more than {MAX_SUMMARY_BYTES} bytes)."
            )


def _kill(pid: int) -> None:
    """SIGKILL the child's process group (what the job started too), then reap the child."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _no_dupes(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def _nesting_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (checked before json.loads,
    whose recursion a hostile summary could otherwise exhaust)."""
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return True
    return False


# -- the child -------------------------------------------------------------------------------


def _child(  # pragma: no cover - runs in the forked child
    user: SystemUser,
    job: Callable[[], JSONValue],
    groups: list[int],
    before_drop: Callable[[], None] | None,
    write_fd: int,
) -> None:
    """Become the user, run the job, write the summary, and `os._exit` whatever happens."""
    code = _CHILD_FAILED
    pipe_fd = write_fd
    stage = "could not prepare"
    try:
        # Root's objects are never collected here: their finalizers (closing root's pools and
        # files) are not the job's business, and untouched pages stay shared with root.
        gc.freeze()
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        _reset_signals()
        if before_drop is not None:
            before_drop()
        _keep_only_summary_pipe(write_fd)
        stage = "could not become the user"
        _drop_privileges(user, groups)
        os.umask(0o022)
        _set_environment(user)
        stage = "could not enter the home folder"
        os.chdir(user.home)
        stage = "could not send its summary"
        _write_all(pipe_fd, _run_job(user, job))
        code = 0
    except BaseException:
        # The job did not run (or its summary was cut): say so, if the pipe is still there.
        _log_exception()
        with contextlib.suppress(BaseException):
            _write_all(pipe_fd, _failure(f"The job for {user.name} {stage}.", "setup"))
            code = 0
    finally:
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        os._exit(code)


def _reset_signals() -> None:
    # The parent's handlers (e.g. the daemon's SIGTERM) must never run in the child.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    # As Python starts: a closed socket or a size limit is an exception, not a silent death.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _keep_only_summary_pipe(write_fd: int) -> None:
    """stdin and stdout become /dev/null, and so does every other descriptor root had open,
    but the summary pipe: the job can reach none of root's files or sockets.

    They are replaced, not closed: Python objects inherited from root (a connection pool's
    sockets, open files) still hold those numbers and close them when they are collected. Were
    the numbers free, the job's own files would get them, and such a close would hit the
    record's lock, a temporary file or the connection to cPanel (seen in bench/: "Bad file
    descriptor", "cannot reach cPanel")."""
    global _summary_fd
    os.set_inheritable(write_fd, False)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    # stdout must not reach root's stdout (le-cp prints JSON there); stderr keeps tracebacks.
    for std in (0, 1):
        os.dup2(null, std)
    for fd in _open_descriptors():
        if fd > 2 and fd not in (write_fd, null):
            with contextlib.suppress(OSError):
                os.dup2(null, fd, inheritable=False)
    if null > 2:
        os.close(null)
    _summary_fd = write_fd


def _open_descriptors() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: ask each possible number
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        top = hard if hard != resource.RLIM_INFINITY and hard < 1 << 16 else 1 << 16
        found = []
        for fd in range(top):
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, fcntl.F_GETFD)
                found.append(fd)
        return found


def summary_fd() -> int:
    """In a job: the descriptor of the summary pipe to root (-1 outside a worker)."""
    return _summary_fd


def _drop_privileges(user: SystemUser, groups: list[int]) -> None:
    _set_dumpable(False)
    os.setgroups(groups)
    os.setgid(user.gid)
    os.setuid(user.uid)
    ids = (user.uid, user.uid, user.uid), (user.gid, user.gid, user.gid)
    if (os.getresuid(), os.getresgid()) != ids or set(os.getgroups()) != set(groups):
        raise RuntimeError("the ids did not change as asked")
    for regain in (os.setuid, os.setgid, os.seteuid):
        try:
            regain(0)
        except PermissionError:
            continue
        raise RuntimeError("root could be regained after the drop")
    # The kernel resets "dumpable" on a uid change to fs.suid_dumpable, which may be 1: set it.
    _set_dumpable(False)


def _set_dumpable(dumpable: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    if libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) != int(dumpable):
        raise RuntimeError("prctl(PR_SET_DUMPABLE) did not take")


def _set_environment(user: SystemUser) -> None:
    # Root's environment may carry secrets: keep only what a job needs.
    kept = {name: os.environ[name] for name in KEPT_ENVIRONMENT if name in os.environ}
    os.environ.clear()
    os.environ.update(kept)
    os.environ.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    os.environ.update(HOME=str(user.home), USER=user.name, LOGNAME=user.name)


def _run_job(user: SystemUser, job: Callable[[], JSONValue]) -> bytes:
    try:
        result = job()
    except Error as exc:
        return _failure(str(exc)[:MAX_ERROR_CHARS] or type(exc).__name__, type(exc).__name__)
    except BaseException as exc:
        # The message of an unexpected exception may quote data (a key, a token): log the
        # frames and the type only, and tell root only the type.
        _log_exception()
        name = type(exc).__name__
        return _failure(f"The job for {user.name} failed unexpectedly ({name}).", "internal")
    try:
        summary = json.dumps({"ok": True, "result": result}, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return _failure(f"The job for {user.name} returned something that is not JSON.", "internal")
    if len(summary) > MAX_SUMMARY_BYTES:
        return _failure(f"The job for {user.name} returned too large a result.", "internal")
    return summary


def _failure(message: str, kind: str) -> bytes:
    return json.dumps({"ok": False, "error": message, "kind": kind[:MAX_KIND_CHARS]}).encode()


def _log_exception() -> None:
    exc = sys.exc_info()[1]
    with contextlib.suppress(BaseException):
        frames = "".join(traceback.format_tb(exc.__traceback__)) if exc else ""
        sys.stderr.write(f"letsencrypt-cpanel worker: {type(exc).__name__}\n{frames}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
