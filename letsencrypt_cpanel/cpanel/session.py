"""UAPI over HTTPS inside a cPanel user session: what a worker running as the user uses.

Root asks WHM `create_user_session` (cpanel-api.md §3); the worker gets the `UserSession` and the
pin, GETs the login URL once for the `cpsession` cookie (cpanel-api.md §7: cookie name), calls
`https://host:port{cp_security_token}/execute/Module/func` with POST bodies (§1.1), and logs out
(`{cp_security_token}/logout/`) when done, even on error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import CpanelTransportError
from .envelope import Args, check_uapi_result, expand_args
from .https import PinnedHttpsClient, require_json_reply
from .models import UserSession
from .tls import PinnedTLS
from .uapi import UserAPI

log = logging.getLogger(__name__)

TRANSPORT = "https-session"
COOKIE_NAME = "cpsession"


class SessionUapiTransport:
    """A `UapiTransport` for one logged-in session (the cookie is a secret: not in repr)."""

    def __init__(
        self, client: PinnedHttpsClient, base_url: str, security_token: str, cookie: str
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self._token = security_token
        self._cookie = cookie

    def __repr__(self) -> str:
        return f"SessionUapiTransport({self.base_url!r})"

    def _headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE_NAME}={self._cookie}"}

    def call_uapi(self, module: str, func: str, args: Args) -> dict[str, Any]:
        reply = self.client.request(
            "POST",
            f"{self.base_url}{self._token}/execute/{module}/{func}",
            module=module,
            func=func,
            data=expand_args(args),
            headers=self._headers(),
        )
        result = require_json_reply(reply, module, func, transport=TRANSPORT)
        return check_uapi_result(module, func, result, transport=TRANSPORT)

    def logout(self) -> None:
        """End the session; failures are logged (without details) and swallowed, because the
        session expires on its own and the caller's own error matters more."""
        try:
            self.client.request(
                "GET",
                f"{self.base_url}{self._token}/logout/",
                module="",
                func="logout",
                headers=self._headers(),
            )
        except CpanelTransportError as exc:
            log.warning("cPanel logout failed: %s", exc.reasons[0] if exc.reasons else "")


def session_base_url(login_url: str, host: str | None = None, port: int | None = None) -> str:
    """`https://host:port` of the login URL, optionally pointed elsewhere (cPanel names the
    server's public hostname; workers talk to loopback)."""
    parts = urlsplit(login_url)
    if parts.scheme != "https" or not parts.hostname:
        raise CpanelTransportError(
            "",
            "create_user_session",
            ["the session URL is not an https:// URL"],
            transport=TRANSPORT,
        )
    netloc = f"{host or parts.hostname}:{port or parts.port or 2083}"
    return urlunsplit(("https", netloc, "", "", ""))


def login(client: PinnedHttpsClient, session: UserSession, base_url: str) -> str:
    """Redeem the login URL once and return the `cpsession` cookie. The redirect is not followed:
    the cookie comes from Set-Cookie (cpanel-api.md §3 create_user_session, §7)."""
    parts = urlsplit(session.url)
    url = urlunsplit(("https", urlsplit(base_url).netloc, parts.path, parts.query, ""))
    reply = client.request("GET", url, module="", func="login")
    if reply.status >= 400:
        raise CpanelTransportError(
            "",
            "login",
            [f"the session login was refused (HTTP {reply.status})"],
            transport=TRANSPORT,
        )
    cookie = reply.cookies.get(COOKIE_NAME, "")
    if not cookie:
        raise CpanelTransportError(
            "", "login", ["the session login set no cpsession cookie"], transport=TRANSPORT
        )
    return cookie


@contextmanager
def user_session(
    session: UserSession,
    tls: PinnedTLS,
    *,
    timeout: float = 60.0,
    host: str | None = None,
    port: int | None = None,
) -> Iterator[UserAPI]:
    """Log in with `session`, yield the user's `UserAPI`, and log out on the way out (also when
    the body raises). `host`/`port` replace the login URL's address (e.g. 127.0.0.1:2083).
    Raises `CpanelTransportError` when the login fails."""
    client = PinnedHttpsClient(tls, timeout=timeout, transport_name=TRANSPORT)
    try:
        base_url = session_base_url(session.url, host, port)
        cookie = login(client, session, base_url)
        transport = SessionUapiTransport(client, base_url, session.cp_security_token, cookie)
        try:
            yield UserAPI(transport)
        finally:
            transport.logout()
    finally:
        client.close()
