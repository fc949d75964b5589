"""Fault switches: make chosen API functions misbehave the way a real cPanel server sometimes does.

The switches live in `ROOT/var/cpanel/sandbox.json` under `faults`, so a test (another process)
can flip them while the server runs; the server reads them on every request. A key names a UAPI
function (`"SSL::install_ssl"`, over HTTPS and LiveAPI alike) or a WHM function
(`"whm:installssl"`); the value is `{"mode": MODE, "times": N}`. `times` counts down and is
persisted; a switch without `times` stays on until cleared.

Modes:
- `status0`: a well-formed failure (`status: 0` with a plausible error, or WHM `result: 0`);
- `unknown_error`: the function does its work, then the answer says it failed with an
  "unknown error" (cpanel-api.md §1.6: `install_ssl` does this; `data` stays as computed);
- `html`: an HTML login page with HTTP 200 instead of JSON (what a proxy or an expired
  session in front of cpsrvd produces);
- `truncated`: half the body, then the connection closes (no Content-Length, so the client
  sees a complete but cut-off JSON text);
- `timeout`: nothing at all until the client gives up (at most TIMEOUT_SECONDS);
- `drop`: the connection closes before any answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cpanel_sandbox import layout

FAULT_MODES = ("status0", "unknown_error", "html", "truncated", "timeout", "drop")
# Modes answered with well-formed JSON (the rest break the transport).
RESULT_MODES = ("status0", "unknown_error")
ENV_VAR = "CPANEL_SANDBOX_FAULTS"
# Longer than any client timeout the plugin uses, short enough that a forgotten test ends.
TIMEOUT_SECONDS = 30.0

LOGIN_PAGE_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>cPanel Login</title></head>
<body class="login">
<div id="login-wrapper">
  <form id="login_form" action="/login/?login_only=1" method="post">
    <label for="user">Username</label><input name="user" id="user" type="text">
    <label for="pass">Password</label><input name="pass" id="pass" type="password">
    <button type="submit" id="login_submit">Log in</button>
  </form>
  <div id="login-status">Your session has expired. Log in again.</div>
</div>
</body>
</html>
"""


def state_path(root: Path) -> Path:
    return layout.sandbox_json(root)


def _lock_path(root: Path) -> Path:
    return state_path(root).with_name(".sandbox.json.lock")


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialize read-modify-write of sandbox.json between the server and test processes."""
    path = _lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_state(root: Path) -> dict[str, Any]:
    """sandbox.json as a dict ({} when absent or unreadable)."""
    try:
        data = json.loads(state_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_state(root: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply `change` to sandbox.json under the lock and write it back atomically."""
    with _locked(root):
        state = read_state(root)
        change(state)
        layout.write_file(
            state_path(root), json.dumps(state, indent=2, sort_keys=True) + "\n", mode=0o644
        )
        return state


def valid_faults(raw: Any) -> dict[str, dict[str, Any]]:
    """The well-formed entries of a faults mapping; malformed ones are reported and skipped."""
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(raw, dict):
        return out
    for key, spec in raw.items():
        if not isinstance(spec, dict) or spec.get("mode") not in FAULT_MODES:
            print(f"cpanel_sandbox: ignoring malformed fault {key!r}", file=sys.stderr)
            continue
        times = spec.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool)):
            print(f"cpanel_sandbox: ignoring fault {key!r}: times must be int", file=sys.stderr)
            continue
        entry: dict[str, Any] = {"mode": spec["mode"]}
        if times is not None:
            entry["times"] = times
        out[str(key)] = entry
    return out


def faults_from_env(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    text = env.get(ENV_VAR, "").strip()
    if not text:
        return {}
    try:
        return valid_faults(json.loads(text))
    except ValueError:
        print(f"cpanel_sandbox: {ENV_VAR} is not JSON; ignored", file=sys.stderr)
        return {}


def set_fault(root: Path, key: str, mode: str, times: int | None = 1) -> None:
    """Make `key` ("Module::func" or "whm:func") misbehave `times` times (None: until cleared)."""
    if mode not in FAULT_MODES:
        raise ValueError(f"unknown fault mode {mode!r}; known: {', '.join(FAULT_MODES)}")
    entry: dict[str, Any] = {"mode": mode}
    if times is not None:
        entry["times"] = times

    def change(state: dict[str, Any]) -> None:
        faults = valid_faults(state.get("faults"))
        faults[key] = entry
        state["faults"] = faults

    update_state(root, change)


def clear_faults(root: Path) -> None:
    def change(state: dict[str, Any]) -> None:
        state["faults"] = {}

    update_state(root, change)


def take_fault(root: Path, key: str) -> str | None:
    """The mode to apply to this call of `key`, consuming one of its `times`; None = behave."""
    entry = valid_faults(read_state(root).get("faults")).get(key)
    if entry is None:
        return None  # the common case answers without taking the lock
    taken: list[str] = []

    def change(state: dict[str, Any]) -> None:
        faults = valid_faults(state.get("faults"))
        current = faults.get(key)
        if current is None:
            return
        times = current.get("times")
        if times is not None and times <= 0:
            del faults[key]
        else:
            taken.append(current["mode"])
            if times is not None:
                if times <= 1:
                    del faults[key]
                else:
                    current["times"] = times - 1
        state["faults"] = faults

    update_state(root, change)
    return taken[0] if taken else None


# Plausible failure texts, taken from cPanel's own messages where the function has one (§2).
_UAPI_ERRORS = {
    "SSL::install_ssl": "The certificate could not be installed on the domain “{domain}”.",
    "SSL::delete_ssl": "Failed to remove SSL host for “{domain}”: The system is busy.",
    "SSL::installed_hosts": "Unable to retrieve the installed hosts: The system is busy.",
    "DNS::mass_edit_zone": "The DNS zone “{zone}” could not be updated: The system is busy.",
}


def uapi_failure(module: str, func: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """A UAPI result with status 0, shaped exactly like cPanel's (§1.1)."""

    def first(name: str) -> str:
        value = args.get(name)
        if isinstance(value, (list, tuple)):
            return str(value[0]) if value else ""
        return "" if value is None else str(value)

    template = _UAPI_ERRORS.get(
        f"{module}::{func}", "The system failed to run “{module}::{func}”: The system is busy."
    )
    text = template.format(module=module, func=func, domain=first("domain"), zone=first("zone"))
    return {
        "status": 0,
        "errors": [text],
        "warnings": None,
        "messages": None,
        "metadata": {},
        "data": None,
    }


UNKNOWN_ERROR = "An unknown error occurred."


def uapi_result(
    mode: str, module: str, func: str, args: Mapping[str, Any], run: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The UAPI result of a RESULT_MODES fault; `run` calls the real function."""
    if mode == "status0":
        return uapi_failure(module, func, args)
    result = dict(run())
    first = [] if result.get("status") == 1 else list(result.get("errors") or [])
    if not first:
        first = uapi_failure(module, func, args)["errors"]
    result.update(status=0, errors=[*first, UNKNOWN_ERROR], messages=None)
    return result


def whm_result(func: str, mode: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The WHM envelope of a RESULT_MODES fault (an unknown error after the work was done)."""
    if mode == "status0":
        return whm_failure(func)
    run()
    failed = whm_failure(func)
    failed["metadata"]["reason"] = f"API failure: {UNKNOWN_ERROR}"
    return failed


def whm_failure(func: str) -> dict[str, Any]:
    """A WHM API 1 failure envelope: no `data`, `result` 0, an `API failure:` reason (§1.5)."""
    return {
        "metadata": {
            "command": func,
            "version": 1,
            "result": 0,
            "reason": f"API failure: The system failed to run “{func}”: The system is busy.",
        }
    }


def truncated(body: bytes) -> bytes:
    """The first half of a body (at least one byte when there was any)."""
    return body[: max(1, len(body) // 2)] if body else body


def _client_gone(sock: socket.socket, wait: float) -> bool:
    """Wait up to `wait` seconds; True when the peer closed its side meanwhile."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        data = sock.recv(1)
    except OSError:  # ssl.SSLError included
        return True
    return data == b""


def misbehave_http(
    handler: BaseHTTPRequestHandler, mode: str, compute: Callable[[], dict[str, Any]]
) -> None:
    """Answer an HTTP API request the `truncated`, `timeout` or `drop` way."""
    handler.close_connection = True
    if mode == "truncated":
        body = json.dumps(compute()).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", 'application/json; charset="utf-8"')
        handler.send_header("Connection", "close")  # no length: the cut-off body looks whole
        handler.end_headers()
        handler.wfile.write(truncated(body))
        return
    if mode == "timeout":
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline and not _client_gone(handler.connection, 0.5):
            pass
    with contextlib.suppress(OSError):  # drop: no close_notify, no answer
        handler.connection.shutdown(socket.SHUT_RDWR)
