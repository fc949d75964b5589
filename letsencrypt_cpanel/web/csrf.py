"""CSRF tokens bound to the cPanel session.

cpsrvd gives every session a security token (`cp_security_token`, "/cpsessNNNN") that is part of
every URL of the session. The form token is HMAC-SHA256 of that token under a random secret of
this user, kept 0600 in the user's nvdata folder: a token from another session (or another user)
never matches, and a page of another site cannot compute one. Tokens are compared in constant
time. The secret is never sent anywhere; only the HMAC travels, in forms and JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .nvdata_files import NvdataFolder

HMAC_KEY_FILE = "letsencrypt-cpanel.csrf-secret"
_CONTEXT = b"letsencrypt-cpanel csrf v1\0"


class CsrfGuard:
    """Tokens for one user's session. Constructing does no I/O; the secret is made on first use."""

    def __init__(self, folder: NvdataFolder, session_token: str) -> None:
        self.folder = folder
        self.session_token = session_token
        self._secret: bytes | None = None

    def _key(self) -> bytes:
        if self._secret is None:
            fresh = secrets.token_hex(32).encode("ascii")
            self._secret = self.folder.create_once(HMAC_KEY_FILE, fresh).strip()
        return self._secret

    def token(self) -> str:
        """The token forms of this session carry. Empty when there is no session token."""
        if not self.session_token:
            return ""
        message = _CONTEXT + self.session_token.encode("utf-8")
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def valid(self, given: str) -> bool:
        expected = self.token()
        if not expected or not given:
            return False
        return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))
