"""The LiveAPI socket cpsrvd gives a `.live.` CGI (cpanel-api.md §1.3).

One fresh UNIX socket per CGI run, in a root-owned 0711 folder (users may reach a socket whose
name they know, but not list the folder), owned by the page's user and mode 0600. The API runs as
the user the socket was made for: what a request claims about identity is never looked at.

Wire format (S1 Cpanel/LiveAPI.pm, cPanel's PHP test double): the client sends
`<decimal length>\\n<payload>` frames; the server answers each with
`<?xml version="1.0" ?>\\n<cpanelresult>...</cpanelresult>\\n` and the client reads until it
sees `</cpanelresult>`. `<cpaneljson enable="1">` switches replies to embedded JSON;
`<cpanelxml shutdown="1" />` ends the conversation (the server closes the connection).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cpanel_sandbox import faults, uapi

MAX_FRAME = 16 * 1024 * 1024
# sockaddr_un holds 108 bytes including the NUL; stay well below.
MAX_SOCKET_PATH = 100

_PROLOG = b'<?xml version="1.0" ?>\n'
JSON_ENABLED = b'<cpanelresult>{"data":{"result":"json"}}</cpanelresult>'
UNKNOWN_REQUEST = b'<cpanelresult>{"result":0,"error":"Unknown API request"}</cpanelresult>'
# An error that cpsrvd could only log (S1: the client maps it to "check the cPanel error_log").
LOGGED_ERROR = b"<cpanelresult></cpanelresult>"


def make_socket_dir(root: Path) -> Path:
    """The folder for LiveAPI sockets: under ROOT when the path is short enough, else in /tmp."""
    preferred = root / "var" / "cpanel" / "liveapi"
    if len(str(preferred)) + 40 <= MAX_SOCKET_PATH:
        preferred.mkdir(parents=True, exist_ok=True)
        folder = preferred
    else:
        folder = Path(tempfile.mkdtemp(prefix="cpsb-live-", dir="/tmp"))
    os.chown(folder, 0, 0)
    # Users may reach a socket whose name they were given, but not list the folder.
    os.chmod(folder, 0o711)  # noqa: S103
    return folder


def remove_socket_dir(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _reply(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(_PROLOG + payload + b"\n")


def _args_from_json(raw: Any) -> dict[str, list[str]]:
    """LiveAPI args (a JSON object) in the parse_qs shape UAPI functions take."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    if not isinstance(raw, dict):
        return {}
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        out[str(key)] = [text(v) for v in value] if isinstance(value, list) else [text(value)]
    return out


class Conversation:
    """One client connection: reads frames, answers them as `user`."""

    def __init__(self, root: Path, user: str, conn: socket.socket, stop: threading.Event):
        self.root = root
        self.user = user
        self.conn = conn
        self.stop = stop
        self.json_mode = False

    def _read_exact(self, n: int) -> bytes | None:
        chunks: list[bytes] = []
        while n > 0:
            data = self.conn.recv(min(n, 65536))
            if not data:
                return None
            chunks.append(data)
            n -= len(data)
        return b"".join(chunks)

    def read_frame(self) -> bytes | None:
        digits = b""
        while True:
            ch = self.conn.recv(1)
            if not ch:
                return None
            if ch == b"\n":
                break
            digits += ch
            if len(digits) > 12 or not ch.isdigit():
                return None
        length = int(digits or b"0")
        if length > MAX_FRAME:
            return None
        payload = self._read_exact(length)
        if payload is None:
            return None
        # Perl counts characters, not bytes: a non-ASCII payload arrives longer than announced.
        while payload.lstrip().startswith(b"<cpanelaction>") and b"</cpanelaction>" not in payload:
            more = self.conn.recv(65536)
            if not more or len(payload) > MAX_FRAME:
                return None
            payload += more
        return payload

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                frame = self.read_frame()
                if frame is None:
                    return
                if not self.answer(frame.decode("utf-8", errors="replace").strip()):
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                self.conn.close()

    def answer(self, text: str) -> bool:
        """Reply to one frame; False ends the conversation."""
        if text.startswith("<cpaneljson"):
            self.json_mode = 'enable="1"' in text or "enable='1'" in text
            _reply(self.conn, JSON_ENABLED)
            return True
        if text.startswith("<cpanelxml") and "shutdown" in text:
            return False
        if text.startswith("<cpanelaction>") and text.endswith("</cpanelaction>"):
            return self.action(text[len("<cpanelaction>") : -len("</cpanelaction>")])
        _reply(self.conn, UNKNOWN_REQUEST)
        return True

    def action(self, body: str) -> bool:
        try:
            request = json.loads(body)
            module, func = str(request["module"]), str(request["func"])
        except (ValueError, KeyError, TypeError):
            print("liveapi: malformed cpanelaction", file=sys.stderr)
            _reply(self.conn, LOGGED_ERROR)
            return True
        version = str(request.get("apiversion", ""))
        if not self.json_mode:
            # Only the embedded-JSON protocol is emulated; XML replies are not.
            print("liveapi: request before <cpaneljson enable=1>", file=sys.stderr)
            _reply(self.conn, LOGGED_ERROR)
            return True
        if version not in ("uapi", "3"):
            reply: dict[str, Any] = {
                "cpanelresult": {
                    "apiversion": int(version) if version.isdigit() else version,
                    "module": module,
                    "func": func,
                    "event": {"result": 0},
                    "error": "The cPanel sandbox emulates UAPI only over LiveAPI.",
                    "data": [],
                }
            }
            _reply(self.conn, b"<cpanelresult>" + json.dumps(reply).encode() + b"</cpanelresult>")
            return True
        args = _args_from_json(request.get("args"))
        mode = faults.take_fault(self.root, f"{module}::{func}")
        if mode is not None and mode not in faults.RESULT_MODES:
            return self.misbehave(mode, module, func, args)

        def run() -> dict[str, Any]:
            return call_uapi(self.root, self.user, module, func, args)

        result = run() if mode is None else faults.uapi_result(mode, module, func, args, run)
        wrapped = {"apiversion": 3, "func": func, "module": module, "result": result}
        _reply(self.conn, b"<cpanelresult>" + json.dumps(wrapped).encode() + b"</cpanelresult>")
        return True

    def misbehave(self, mode: str, module: str, func: str, args: Mapping[str, Any]) -> bool:
        if mode == "html":
            page = faults.LOGIN_PAGE_HTML.encode()
            _reply(self.conn, b"<cpanelresult>" + page + b"</cpanelresult>")
            return True
        if mode == "truncated":
            result = call_uapi(self.root, self.user, module, func, args)
            wrapped = {"apiversion": 3, "func": func, "module": module, "result": result}
            full = _PROLOG + b"<cpanelresult>" + json.dumps(wrapped).encode() + b"</cpanelresult>"
            with contextlib.suppress(OSError):
                self.conn.sendall(faults.truncated(full))
            return False
        if mode == "timeout":
            deadline = time.monotonic() + faults.TIMEOUT_SECONDS
            while time.monotonic() < deadline and not self.stop.is_set():
                with contextlib.suppress(OSError):
                    self.conn.settimeout(0.5)
                    try:
                        if self.conn.recv(1) == b"":
                            break
                    except TimeoutError:
                        continue
            return False
        return False  # drop: close without a word


def call_uapi(
    root: Path, user: str, module: str, func: str, args: Mapping[str, Any]
) -> dict[str, Any]:
    """uapi.dispatch; a crash becomes a status-0 result with the exception text, as cPanel's
    `_handle_eval_fail` does (S1 Cpanel/API.pm)."""
    try:
        return uapi.dispatch(root, user, module, func, args)
    except Exception as exc:  # the sandbox's edge: report, never die
        traceback.print_exc(file=sys.stderr)
        return {
            "status": 0,
            "errors": [str(exc) or exc.__class__.__name__],
            "warnings": None,
            "messages": None,
            "metadata": {},
            "data": None,
        }


class LiveAPISocket:
    """A listening LiveAPI socket for one CGI run; `close()` stops it and removes the file."""

    def __init__(self, root: Path, user: str, uid: int, gid: int, folder: Path):
        self.root = root
        self.user = user
        self.path = folder / f"{secrets.token_hex(8)}.sock"
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._connections: list[socket.socket] = []
        try:
            self._listener.bind(str(self.path))
            os.chown(self.path, uid, gid)
            os.chmod(self.path, 0o600)
            self._listener.listen(8)
            self._listener.settimeout(0.2)
        except BaseException:
            self._listener.close()
            self.path.unlink(missing_ok=True)
            raise
        self._thread = threading.Thread(target=self._accept_loop, name="liveapi", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._stop.is_set():  # close()'s wake-up call
                conn.close()
                return
            conn.settimeout(None)
            self._connections.append(conn)
            talk = Conversation(self.root, self.user, conn, self._stop)
            threading.Thread(target=talk.run, name="liveapi-conn", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        # Wake the accept() now with a connection of our own, rather than at its next 0.2 s
        # timeout: the page's reply waits for this close (bench/ saw ~100-200 ms a page).
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
            wake.settimeout(0.2)
            wake.connect(str(self.path))
        self._thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def serving(root: Path, user: str, uid: int, gid: int, folder: Path) -> Iterator[Path]:
    """A LiveAPI socket for `user` while the block runs; yields its path."""
    live = LiveAPISocket(root, user, uid, gid, folder)
    try:
        yield live.path
    finally:
        live.close()
