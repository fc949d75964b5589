"""Who may use the WHM page, and the CSRF tokens of a WHM session.

cpsrvd runs the page as root for any WHM user the AppConfig lets in (`acls=any`), with that
user in `REMOTE_USER` (cpanel-api.md §5). The page itself decides, before anything else:
root, or a reseller with the `all` ACL in /var/cpanel/resellers, sees and changes everything;
another reseller sees only the certificates of the accounts it owns, and gets 403 on options
and actions; anybody else gets 403.

CSRF: the token is HMAC-SHA256, under a random root-only secret kept in the daemon's state folder,
of the WHM user and the session's security token (`cp_security_token`, "/cpsessNNNN"): a token
from another session or another WHM user never matches. (The cPanel page's `csrf.CsrfGuard` keeps
its secret in the user's nvdata folder; root has no such folder, hence this small twin.)
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings

RESELLERS_PATH = "/var/cpanel/resellers"
CSRF_KEY_FILE = "whm-csrf.secret"
_CONTEXT = b"letsencrypt-cpanel whm csrf v1\0"


class Forbidden(Exception):
    """403: this WHM user may not see or do this. The text is shown as is."""


@dataclass(frozen=True)
class Access:
    """The WHM user and what it may do. `full`: root or a reseller with `all`."""

    user: str
    full: bool

    def require_full(self) -> None:
        if not self.full:
            raise Forbidden(
                "Only root or a reseller with the “all” privilege may change options or run "
                "actions here."
            )


def reseller_acls(settings: Settings) -> dict[str, list[str]]:
    """/var/cpanel/resellers: `user:acl,acl` lines (cpanel-api.md §4). Root's own file."""
    try:
        text = settings.path(RESELLERS_PATH).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise Forbidden(f"The list of resellers cannot be read ({exc.strerror}).") from exc
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, sep, acls = line.partition(":")
        if sep and name.strip():
            out[name.strip()] = [a.strip() for a in acls.split(",") if a.strip()]
    return out


def resolve_access(settings: Settings, remote_user: str) -> Access:
    """Access for REMOTE_USER, or Forbidden. Runs before anything else the page does."""
    if remote_user == "root":
        return Access("root", True)
    acls = reseller_acls(settings).get(remote_user) if remote_user else None
    if acls is None:
        raise Forbidden("This page is for root and resellers only.")
    return Access(remote_user, "all" in acls)


class WhmCsrf:
    """Tokens for one WHM session. Constructing does no I/O; the secret is made on first use."""

    def __init__(self, state_dir: Path, user: str, session_token: str) -> None:
        self.state_dir = state_dir
        self.user = user
        self.session_token = session_token
        self._secret: bytes | None = None

    def _key(self) -> bytes:
        if self._secret is None:
            self._secret = _secret(self.state_dir / CSRF_KEY_FILE)
        return self._secret

    def token(self) -> str:
        if not self.session_token:
            return ""
        message = _CONTEXT + f"{self.user}\0{self.session_token}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def valid(self, given: str) -> bool:
        expected = self.token()
        if not expected or not given:
            return False
        return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))


def _secret(path: Path) -> bytes:
    """Read the secret, or make it once (O_EXCL: two first requests agree on one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(FileNotFoundError):
        return _read(path, flags)
    fresh = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read(path, flags)
    with os.fdopen(fd, "wb") as fh:
        fh.write(fresh)
        fh.flush()
        os.fsync(fh.fileno())
    return fresh


def _read(path: Path, flags: int) -> bytes:
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(256).strip()
    if len(data) < 32:
        raise Forbidden("The page's CSRF secret is damaged; remove " + str(path))
    return data
