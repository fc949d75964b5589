"""Root's UNIX socket: the few things user-side code must ask root for, answered strictly.

ARCHITECTURE.md, "The daemon's socket". A root-owned socket (`Settings.root_socket`, mode 0666:
anyone may connect, nobody is trusted for what they claim); each caller is identified by the
kernel (`SO_PEERCRED`), and answered only if its uid is allowed: by default a cPanel account's
uid (listed in /etc/passwd under the root prefix, not root or a system account, with a
`/var/cpanel/users/NAME` file); or exactly the uids the caller of `serve_root_socket` gives
(`le-cp` serves one worker this way, on a private path). One JSON request per connection, one
line, at most MAX_REQUEST bytes, a few seconds to send it; one JSON line back.

Requests: {"op": "ping"} -> {"ok": true}; {"op": "eab_binding", "jwk": {...}, "url": "..."} ->
{"ok": true, "binding": {...}} (eab.py); {"op": "reserve" | "settle", ...}: the budget of the
caller's own order (issue_budget.py). Anything else -> {"ok": false, "error": "..."}.

Run it in a process of its own (`spawn_root_service`, or `python -m
letsencrypt_cpanel.root_service`): it reads the EAB HMAC key on each request, and a process that
later forks user workers must never have read it. Run that way, it also rereads the config for
each request (a small file): `le-cp config set acme_directory / eab_kid` applies to the next
binding, with no restart and no signal (the daemon's SIGHUP does not reach this process).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings, load_settings
from .eab import EabUnavailable, binding_for
from .errors import ConfigError, Error
from .system_users import MIN_USER_ID, UserRefused, lookup_user

if TYPE_CHECKING:  # the service itself never loads the ACME library
    from .acme_client import Binder

MAX_REQUEST = 16 * 1024
MAX_ANSWER = 64 * 1024
READ_TIMEOUT = 3.0
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
PRIVATE_SOCKET_DIR = "/var/run/letsencrypt-cpanel"


_PR_SET_PDEATHSIG = 1


class RootServiceError(Error):
    """The root service could not be asked, or it refused (`reply`: its answer, if any)."""

    def __init__(self, message: str, reply: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reply: Mapping[str, Any] = reply or {}


def peer_uid(conn: socket.socket) -> int:
    """The connecting process's uid, as the kernel saw it at connect()."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return int(_UCRED.unpack(raw)[1])


def _user_name_of(settings: Settings, uid: int) -> str | None:
    try:
        text = settings.path("/etc/passwd").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) == 7 and fields[2] == str(uid):
            return fields[0]
    return None


def is_cpanel_user(settings: Settings, uid: int) -> bool:
    """Whether `uid` is a cPanel account's (what the default service answers)."""
    if uid < MIN_USER_ID:
        return False
    name = _user_name_of(settings, uid)
    if name is None:
        return False
    try:
        if lookup_user(settings, name).uid != uid:
            return False
    except UserRefused:
        return False
    return settings.path(f"/var/cpanel/users/{name}").is_file()


def answer(settings: Settings, request: Any, uid: int) -> dict[str, Any]:
    """The answer to one request from an allowed caller (`uid`, as the kernel says)."""
    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        return {"ok": False, "error": "not a request"}
    op = request["op"]
    if op == "ping" and set(request) == {"op"}:
        return {"ok": True}
    if op == "eab_binding" and set(request) == {"op", "jwk", "url"}:
        try:
            return {"ok": True, "binding": binding_for(settings, request["jwk"], request["url"])}
        except EabUnavailable as exc:
            return {"ok": False, "error": str(exc)}
    if op in ("reserve", "settle"):
        from . import issue_budget

        user = _user_name_of(settings, uid)
        if user is None:
            return {"ok": False, "error": "not a cPanel account"}
        handle = issue_budget.answer_reserve if op == "reserve" else issue_budget.answer_settle
        return handle(settings, user, request)
    return {"ok": False, "error": "unknown request"}


def _read_request(conn: socket.socket) -> bytes | None:
    """One line, sent within READ_TIMEOUT in all (a byte now and then must not hold the
    service, which answers one caller at a time)."""
    data = bytearray()
    deadline = time.monotonic() + READ_TIMEOUT
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        conn.settimeout(left)
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            return None
    return bytes(data).split(b"\n", 1)[0]


class CurrentSettings:
    """The settings as the config file says now, reread on each call; the last good ones while
    the file cannot be read (a broken edit must not stop the bindings)."""

    def __init__(self, settings: Settings) -> None:
        self.last = settings

    def __call__(self) -> Settings:
        try:
            self.last = load_settings({"LECP_ROOT": str(self.last.root)})
        except ConfigError as exc:
            print(
                f"root service: config not reread, the last good one is used: {exc}",
                file=sys.stderr,
            )
        return self.last


def _serve_one(
    conn: socket.socket, settings: Callable[[], Settings], allowed: Callable[[int], bool]
) -> None:
    # Read first (bounded), so a refused caller reads its refusal instead of a broken pipe.
    raw = _read_request(conn)
    uid = peer_uid(conn)
    if not allowed(uid):
        reply: dict[str, Any] = {"ok": False, "error": "not allowed"}
    else:
        try:
            request = json.loads(raw) if raw else None
        except (ValueError, RecursionError):  # deep nesting is a RecursionError, not JSON
            request = None
        try:
            reply = answer(settings(), request, uid)
        except Exception as exc:
            print(f"root service: a request failed: {type(exc).__name__}", file=sys.stderr)
            reply = {"ok": False, "error": "the request could not be answered"}
    conn.settimeout(READ_TIMEOUT)
    conn.sendall(json.dumps(reply).encode("utf-8") + b"\n")


def _listen(path: Path) -> socket.socket:
    """Bind a fresh socket at `path` (mode 0666) in a root-owned folder; an old socket file
    there is replaced, anything else (a file, a link) is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise RootServiceError(f"{path} exists and is not a socket; not replacing it")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o111)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        # Anyone may connect: who may have an answer is decided per caller by SO_PEERCRED.
        os.chmod(path, 0o666)  # noqa: S103
        sock.listen(16)
    except BaseException:
        sock.close()
        raise
    return sock


def serve_root_socket(
    settings: Settings,
    *,
    path: Path | None = None,
    allowed_uids: Collection[int] | None = None,
    stop: threading.Event | None = None,
    ready: Callable[[], None] | None = None,
    reread: bool = False,
) -> None:
    """Serve root's socket until `stop` is set (checked twice a second). `path`: default
    `settings.root_socket`; `allowed_uids`: exactly these callers (default: any cPanel user);
    `reread`: answer each request with the config file's settings of that moment (under
    `settings.root`) rather than `settings` as given.
    Connections are answered one at a time, each within READ_TIMEOUT. Removes the socket on
    the way out. Must run as root."""
    current: Callable[[], Settings] = CurrentSettings(settings) if reread else lambda: settings
    where = path or settings.root_socket
    allowed: Callable[[int], bool] = (
        (lambda uid: uid in allowed_uids)
        if allowed_uids is not None
        else (lambda uid: is_cpanel_user(settings, uid))
    )
    sock = _listen(where)
    sock.settimeout(0.5)
    try:
        if ready is not None:
            ready()
        while stop is None or not stop.is_set():
            try:
                conn, _addr = sock.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                _serve_one(conn, current, allowed)
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            where.unlink()


def ask_root(path: Path, request: Mapping[str, Any], *, timeout: float = 15.0) -> dict[str, Any]:
    """Send one request to root's socket and return the answer (`ok` true). Raises
    RootServiceError when the socket is not there, does not answer, or refuses."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(dict(request)).encode("utf-8") + b"\n")
            data = bytearray()
            while b"\n" not in data and len(data) <= MAX_ANSWER:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise RootServiceError(
            f"root's socket {path} does not answer ({exc.strerror or exc.__class__.__name__}); "
            "is the letsencrypt-cpanel daemon running?"
        ) from exc
    try:
        reply = json.loads(bytes(data).split(b"\n", 1)[0])
    except ValueError as exc:
        raise RootServiceError("root's socket answered something that is not JSON") from exc
    if not isinstance(reply, dict) or reply.get("ok") is not True:
        error = reply.get("error") if isinstance(reply, dict) else None
        raise RootServiceError(
            str(error)[:300] if error else "root's socket said no",
            reply if isinstance(reply, dict) else None,
        )
    return reply


class RootService:
    """A root service running in a process of its own (see `spawn_root_service`)."""

    def __init__(self, process: subprocess.Popen[bytes], path: Path) -> None:
        self.process = process
        self.path = path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> RootService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def private_socket_path(settings: Settings) -> Path:
    """A fresh path for a one-job service, in a root-owned folder under the root prefix."""
    folder = settings.path(PRIVATE_SOCKET_DIR)
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    return folder / f"job-{os.getpid()}-{secrets.token_hex(4)}.sock"


def spawn_root_service(
    settings: Settings,
    *,
    path: Path | None = None,
    allowed_uids: Collection[int] | None = None,
    timeout: float = 15.0,
) -> RootService:
    """Start `serve_root_socket` in a new process (same interpreter, same root prefix) and
    return once it listens. The daemon launcher runs `spawn_root_service(settings)` for the
    well-known socket; `le-cp` runs one per job with the worker's uid alone."""
    where = path or settings.root_socket
    argv = [sys.executable, "-m", "letsencrypt_cpanel.root_service", "--socket", str(where)]
    for uid in allowed_uids or ():
        argv += ["--uid", str(uid)]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "PYTHONPATH", "LANG")}
    env["LECP_ROOT"] = str(settings.root)
    parent = os.getpid()

    def die_with_parent() -> None:
        # A `kill -9` of the daemon (or of le-cp) must not leave the service running alone.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)  # the parent died before the prctl took effect

    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=die_with_parent,  # callers spawn before they start threads
    )
    service = RootService(process, where)
    assert process.stdout is not None
    ready, _w, _x = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else b""
    process.stdout.close()
    if line.strip() != b"ready":
        service.stop()
        raise RootServiceError(f"the root service did not start at {where}")
    return service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="letsencrypt-cpanel-root-service")
    parser.add_argument("--socket", type=Path, default=None)
    parser.add_argument("--uid", type=int, action="append", default=None)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the root service must run as root", file=sys.stderr)
        return 1
    settings = load_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def ready() -> None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()

    serve_root_socket(
        settings, path=args.socket, allowed_uids=args.uid, stop=stop, ready=ready, reread=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _not_configured(_jwk: Mapping[str, Any], _url: str) -> Mapping[str, Any]:
    raise EabUnavailable(
        "The certificate authority requires External Account Binding, and none is set on this "
        "server: `le-cp config set eab_kid KID`, then `le-cp config set eab_hmac_key` with the "
        "HMAC key on standard input."
    )


@contextlib.contextmanager
def binder_for_worker(settings: Settings, uid: int) -> Iterator[Binder]:
    """Root's side of `le-cp`: for the length of one worker's job, a root service on a private
    socket that answers that uid alone, and the binder the job uses to reach it. Without an
    EAB key id and key on this server, a binder that says so (nothing is started)."""
    from .eab import RootBinder

    if not settings.eab_kid or not settings.eab_key_file.is_file():
        yield _not_configured
        return
    path = private_socket_path(settings)
    with spawn_root_service(settings, path=path, allowed_uids=[uid]):
        yield RootBinder(path)
