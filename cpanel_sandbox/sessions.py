"""cpsrvd sessions: WHM create_user_session, its one-time login URL, the `cpsession` cookie
(cpanel-api.md §3 create_user_session, §7 on the cookie name).

Sessions are JSON files under var/cpanel/sessions/ (root-only), so `python -m cpanel_sandbox login`
and the running server share them.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpanel_sandbox import layout

SERVICE_PORT_KEYS = {"cpaneld": "cpanel_port", "whostmgrd": "whm_port", "webmaild": "cpanel_port"}
LIFETIME = 24 * 3600
TOKEN_RE = re.compile(r"^/cpsess(\d{10})$")


@dataclass(frozen=True)
class Session:
    user: str
    service: str
    token: str  # "/cpsessNNNNNNNNNN"
    cookie: str  # the `cpsession` cookie value, as the server sets and compares it
    expires: int


def _path(root: Path, token: str) -> Path | None:
    m = TOKEN_RE.match(token)
    return layout.sessions_dir(root) / f"{m.group(1)}.json" if m else None


def _load(root: Path, token: str) -> dict[str, Any] | None:
    path = _path(root, token)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or int(data.get("expires", 0)) < time.time():
        return None
    return data


def _save(root: Path, data: dict[str, Any]) -> None:
    path = _path(root, data["token"])
    assert path is not None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.write_file(path, json.dumps(data), mode=0o600)


def _session(data: dict[str, Any]) -> Session:
    return Session(data["user"], data["service"], data["token"], data["cookie"], data["expires"])


def create(root: Path, user: str, service: str) -> dict[str, Any]:
    """A new session and the data of WHM create_user_session (`url`, `session`, ...)."""
    token = f"/cpsess{secrets.randbelow(9 * 10**9) + 10**9}"
    secret = f"{user}:{secrets.token_urlsafe(12)},{secrets.token_hex(16)}"
    cookie = urllib.parse.quote(f"{user}:{secrets.token_urlsafe(12)},{secrets.token_hex(16)}")
    expires = int(time.time()) + LIFETIME
    data = {
        "user": user,
        "service": service,
        "token": token,
        "cookie": cookie,
        "expires": expires,
        "login_secret": secret,
        "logged_in": False,
    }
    _save(root, data)
    port = layout.sandbox_config(root).get(SERVICE_PORT_KEYS.get(service, "cpanel_port"))
    port = port or {"whostmgrd": 2087, "webmaild": 2096}.get(service, 2083)
    query = urllib.parse.urlencode({"session": secret})
    return {
        "url": f"https://{layout.SANDBOX_IP}:{port}{token}/login/?{query}",
        "session": secret,
        "cp_security_token": token,
        "expires": expires,
        "service": service,
    }


def _all(root: Path) -> list[dict[str, Any]]:
    folder = layout.sessions_dir(root)
    out: list[dict[str, Any]] = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        data = _load(root, f"/cpsess{path.stem}")
        if data:
            out.append(data)
    return out


def redeem_login(root: Path, session_param: str) -> Session | None:
    """The `?session=` value of a login URL -> the now logged-in session (once only)."""
    for data in _all(root):
        secret = str(data.get("login_secret") or "")
        if secret and hmac.compare_digest(secret.encode(), session_param.encode()):
            data["login_secret"] = ""  # a login URL works once
            data["logged_in"] = True
            _save(root, data)
            return _session(data)
    return None


def check(root: Path, cp_security_token: str, cookie: str | None) -> Session | None:
    """The session if the token is live, logged in and the cookie is its cookie; else None."""
    data = _load(root, cp_security_token)
    if data is None or not cookie or not data.get("logged_in"):
        return None
    if not hmac.compare_digest(str(data["cookie"]).encode(), cookie.encode()):
        return None
    return _session(data)


def destroy(root: Path, cp_security_token: str) -> None:
    path = _path(root, cp_security_token)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
