"""cpsrvd's HTTPS APIs on loopback: the cPanel port (2083) and the WHM port (2087).

cPanel port (service `cpaneld`, cookie `cpsession`):
  /login/?session=...                  redeem a create_user_session URL -> cookie + 302 to the home
  /cpsessN/execute/Module/func         UAPI as the session's user (GET query or POST form)
  /cpsessN/frontend/jupiter/...        plugin pages (*.cgi, *.live.*) through the page host, as
                                       the user; other files there are served as they are
  /cpsessN/logout/ (or /logout/)       end the session
WHM port (service `whostmgrd`, cookie `whostmgrsession`, as on a real server):
  /json-api/FUNC?api.version=1         with `Authorization: whm USER:TOKEN`
  /cpsessN/json-api/FUNC               with the WHM session cookie
  /cpsessN/cgi/...                     WHM plugin CGIs, run as root with REMOTE_USER
  /login/?session=..., /cpsessN/logout/

cPanel port, with a cPanel user API token (`Authorization: cpanel USER:TOKEN`, made by
`python -m cpanel_sandbox.tokens`, see tokens.py):
  /execute/Module/func                 UAPI as USER
A cPanel token on any other document (a WHM function, a page) is refused with "Token
authentication allows access to UAPI or API 2 calls only." (cpanel-api.md §1.1).

Authentication failures are HTTP errors with an HTML body, never JSON: no or wrong session cookie
401, a bad WHM or cPanel token 403, no credentials 401 (cpanel-api.md §1.1: with token auth cpsrvd
answers auth problems with real HTTP codes; which codes, §7 leaves open).
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import re
import sys
import traceback
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cpanel_sandbox import faults, liveapi, pagehost, sessions, tokens, whm
from cpanel_sandbox.sites import (
    QuietHandlerMixin,
    ServiceCertificate,
    TLSHTTPServer,
    request_args,
)

MAX_BODY = 32 * 1024 * 1024
COOKIE_NAMES = {"cpaneld": "cpsession", "whostmgrd": "whostmgrsession"}
_TOKEN_PATH = re.compile(r"^(/cpsess\d+)(/.*)?$")
FRONTEND = ("usr", "local", "cpanel", "base", "frontend", "jupiter")
WHM_DOCROOT = ("usr", "local", "cpanel", "whostmgr", "docroot")


class CpsrvdServer(TLSHTTPServer):
    """One cpsrvd port; `service` says which (cpaneld or whostmgrd)."""

    service: str
    liveapi_dir: Path | None
    cgi_time_limit: float


def make_cpsrvd_server(
    root: Path,
    port: int,
    service: str,
    certificate: ServiceCertificate,
    liveapi_dir: Path | None,
    cgi_time_limit: float = pagehost.DEFAULT_TIME_LIMIT,
) -> CpsrvdServer:
    server = CpsrvdServer(port, CpsrvdHandler, root, service, certificate.context)
    server.service = service
    server.liveapi_dir = liveapi_dir
    server.cgi_time_limit = cgi_time_limit
    return server


def _page(title: str, text: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>{text}</p></body></html>\n"
    ).encode()


class CpsrvdHandler(QuietHandlerMixin, BaseHTTPRequestHandler):
    server: CpsrvdServer
    server_version = "cpsrvd/11.120.0.16"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60

    # ---- plumbing -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = "text/html; charset=utf-8",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, no-store, must-revalidate, private")
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, data: dict[str, Any]) -> None:
        self._send(200, json.dumps(data).encode(), 'application/json; charset="utf-8"')

    def _refuse(self, status: int, text: str) -> None:
        self._send(status, _page("Access denied" if status != 404 else "Not Found", text))

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._refuse(413, "The request body is too large.")
            return None
        return self.rfile.read(length) if length else b""

    def _args(self, query: str, body: bytes) -> dict[str, list[str]]:
        return request_args(query, body, self.headers.get("Content-Type") or "")

    def _cookie(self) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie") or "")
        except CookieError:
            return None
        morsel = jar.get(COOKIE_NAMES[self.server.service])
        return morsel.value if morsel is not None else None

    def _session(self, token: str) -> sessions.Session | None:
        found = sessions.check(self.server.root, token, self._cookie())
        if found is None or found.service != self.server.service:
            return None
        return found

    # ---- routing --------------------------------------------------------------------------

    def _route(self) -> None:
        try:
            self._dispatch()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # the server's edge: a bug answers 500 instead of killing the thread
            traceback.print_exc(file=sys.stderr)
            with contextlib.suppress(OSError):
                self._send(500, _page("Internal Server Error", "The server failed."))

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        body = self._body()
        if body is None:
            return
        if path in ("/login", "/login/"):
            self._login(query)
            return
        if path in ("/logout", "/logout/"):
            # cPanel's own logout link has no token; the page it was clicked on (Referer) does.
            came_from = _TOKEN_PATH.match(urlsplit(self.headers.get("Referer") or "").path)
            self._logout(came_from.group(1) if came_from else None)
            return
        match = _TOKEN_PATH.match(path)
        if path.startswith(("/execute/", "/json-api/")) or (
            match is None and self._auth_scheme() == "cpanel"
        ):
            self._token_api(path, query, body)
            return
        if match is None:
            if path == "/":
                self._send(200, faults.LOGIN_PAGE_HTML.encode())
            else:
                self._refuse(401, "Log in to continue.")
            return
        token, rest = match.group(1), match.group(2) or "/"
        if rest in ("/login", "/login/"):
            # create_user_session's URL carries the token: /cpsessN/login/?session=...
            self._login(query, token)
            return
        session = self._session(token)
        if session is None:
            # cpsrvd answers a stale or foreign session with its login page and a 401.
            self._send(401, faults.LOGIN_PAGE_HTML.encode())
            return
        self._session_request(session, token, rest, query, body)

    def _session_request(
        self, session: sessions.Session, token: str, rest: str, query: str, body: bytes
    ) -> None:
        cpanel = self.server.service == "cpaneld"
        if rest in ("/logout", "/logout/"):
            self._logout(token)
        elif cpanel and rest.startswith("/execute/"):
            self._uapi(session.user, rest, query, body)
        elif not cpanel and rest.startswith("/json-api/"):
            self._whm(session.user, rest, query, body)
        elif cpanel and rest.startswith("/frontend/jupiter/"):
            self._file(session, token, FRONTEND, rest[len("/frontend/jupiter") :], query, body)
        elif not cpanel and rest.startswith("/cgi/"):
            self._file(session, token, (*WHM_DOCROOT, "cgi"), rest[len("/cgi") :], query, body)
        elif not cpanel and rest.startswith("/addon_plugins/"):
            sub = rest[len("/addon_plugins") :]
            self._file(session, token, (*WHM_DOCROOT, "addon_plugins"), sub, query, body)
        elif not cpanel and rest == "/":
            cgi_dir = self.server.root.joinpath(*WHM_DOCROOT, "cgi")
            self._send(200, pagehost.home_page(cgi_dir, token, session.user, prefix="/cgi"))
        else:
            self._refuse(404, "The requested page does not exist.")

    # ---- sessions -------------------------------------------------------------------------

    def _login(self, query: str, token: str | None = None) -> None:
        values = parse_qs(query, keep_blank_values=True).get("session") or [""]
        session = sessions.redeem_login(self.server.root, values[0]) if values[0] else None
        if (
            session is None
            or session.service != self.server.service
            or (token is not None and token != session.token)
        ):
            self._send(401, faults.LOGIN_PAGE_HTML.encode())
            return
        name = COOKIE_NAMES[self.server.service]
        # The value is already percent-encoded (cpsrvd's own holds `:` and `,`).
        cookie = f"{name}={session.cookie}; HttpOnly; path=/; secure"
        home = "/frontend/jupiter/index.html" if self.server.service == "cpaneld" else "/"
        self._send(
            302,
            _page("Moved", "Logged in."),
            headers=[("Set-Cookie", cookie), ("Location", session.token + home)],
        )

    def _logout(self, token: str | None) -> None:
        if token is not None and self._session(token) is not None:
            sessions.destroy(self.server.root, token)
        expired = f"{COOKIE_NAMES[self.server.service]}=closed; HttpOnly; path=/; secure"
        expired += "; expires=Thu, 01-Jan-1970 00:00:01 GMT"
        self._send(
            200, _page("Logged out", "You have logged out."), headers=[("Set-Cookie", expired)]
        )

    # ---- APIs -----------------------------------------------------------------------------

    def _auth_scheme(self) -> str:
        return (self.headers.get("Authorization") or "").strip().partition(" ")[0].lower()

    def _token_api(self, path: str, query: str, body: bytes) -> None:
        scheme, _, credentials = (self.headers.get("Authorization") or "").strip().partition(" ")
        # cpsrvd splits after the scheme word on the first `:` (cpanel-api.md §1.1).
        user, _, api_token = credentials.strip().partition(":")
        scheme = scheme.lower()
        if scheme == "cpanel":
            self._cpanel_token_api(user, api_token, path, query, body)
            return
        if self.server.service == "whostmgrd" and path.startswith("/json-api/"):
            if scheme != "whm" or not user or not api_token:
                self._refuse(401, "Authentication is required.")
            elif not whm.check_token(self.server.root, user, api_token):
                self._refuse(403, "Access denied: the API token is not valid.")
            else:
                self._whm(user, path, query, body)
            return
        self._refuse(401, "Log in to continue.")

    def _cpanel_token_api(
        self, user: str, api_token: str, path: str, query: str, body: bytes
    ) -> None:
        """A request with a cPanel user API token (cpanel-api.md §1.1)."""
        if not path.startswith(("/execute/", "/json-api/cpanel")):
            # Any other document, on either port (a WHM function included): cpsrvd dies with this
            # text. The reference names no status; 403 as for any refused token here.
            self._refuse(403, tokens.TOKEN_SCOPE_ERROR)
        elif self.server.service != "cpaneld":
            # The reference documents cPanel tokens on the cPanel port (2083) only; WHM's port
            # takes WHM tokens, so here it is as if no credentials came.
            self._refuse(401, "Authentication is required.")
        elif not user or not api_token or not tokens.check(self.server.root, user, api_token):
            self._refuse(403, "Access denied: the API token is not valid.")
        elif not path.startswith("/execute/"):
            # ./json-api/cpanel (API 2 / API 1) is open to the token, but the sandbox serves only
            # UAPI: the plugin never calls those APIs.
            self._refuse(404, "The sandbox serves UAPI only (no API 2 or API 1).")
        else:
            self._uapi(user, path, query, body)

    def _uapi(self, user: str, rest: str, query: str, body: bytes) -> None:
        pieces = [p for p in rest.split("/") if p]
        if len(pieces) != 3:
            self._refuse(404, "The requested page does not exist.")
            return
        _, module, func = pieces
        args = self._args(query, body)
        mode = faults.take_fault(self.server.root, f"{module}::{func}")

        def run() -> dict[str, Any]:
            return liveapi.call_uapi(self.server.root, user, module, func, args)

        if mode in faults.RESULT_MODES:
            self._send_json(faults.uapi_result(mode, module, func, args, run))
        elif mode is not None:
            self._misbehave(mode, run)
        else:
            self._send_json(run())

    def _whm(self, user: str, rest: str, query: str, body: bytes) -> None:
        pieces = [p for p in rest.split("/") if p]
        if len(pieces) != 2:
            self._refuse(404, "The requested page does not exist.")
            return
        func = pieces[1]
        args = self._args(query, body)
        if args.get("api.version") != ["1"]:
            # cpanel-api.md §1.5: without api.version=1 cPanel answers in the legacy API 0 format,
            # which the sandbox does not emulate; this is not an API 1 envelope either.
            self._send_json(
                {"status": 0, "statusmsg": "legacy WHM API 0 call; the plugin sends api.version=1"}
            )
            return
        mode = faults.take_fault(self.server.root, f"whm:{func}")

        def run() -> dict[str, Any]:
            return self._call_whm(user, func, args)

        if mode in faults.RESULT_MODES:
            self._send_json(faults.whm_result(func, mode, run))
        elif mode is not None:
            self._misbehave(mode, run)
        else:
            self._send_json(run())

    def _call_whm(self, user: str, func: str, args: dict[str, list[str]]) -> dict[str, Any]:
        try:
            return whm.dispatch(self.server.root, user, func, args)
        except Exception as exc:  # as cPanel's execute_internal: the exception text as the reason
            traceback.print_exc(file=sys.stderr)
            return {
                "metadata": {
                    "command": func,
                    "version": 1,
                    "result": 0,
                    "reason": f"API failure: {exc}",
                }
            }

    def _misbehave(self, mode: str, compute: Callable[[], dict[str, Any]]) -> None:
        self.close_connection = True
        if mode == "html":
            # Said, not only done: a client that reused the connection would fail its next call.
            self._send(200, faults.LOGIN_PAGE_HTML.encode(), headers=[("Connection", "close")])
        else:
            faults.misbehave_http(self, mode, compute)

    # ---- plugin pages ---------------------------------------------------------------------

    def _file(
        self,
        session: sessions.Session,
        token: str,
        base: tuple[str, ...],
        sub: str,
        query: str,
        body: bytes,
    ) -> None:
        base_dir = self.server.root.joinpath(*base)
        found = pagehost.locate(base_dir, unquote(sub))
        if found is None and sub.strip("/") in ("", "index.html"):
            self._send(200, pagehost.home_page(base_dir, token, session.user))
            return
        if found is None:
            self._refuse(404, "The requested page does not exist.")
            return
        target, path_info = found
        if pagehost.is_cgi(target.name):
            self._cgi(session, token, base, target, path_info, query, body)
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, target.read_bytes(), ctype)

    def _cgi(
        self,
        session: sessions.Session,
        token: str,
        base: tuple[str, ...],
        script: Path,
        path_info: str,
        query: str,
        body: bytes,
    ) -> None:
        cpanel = self.server.service == "cpaneld"
        relative = script.relative_to(self.server.root.joinpath(*base)).as_posix()
        url_base = (
            "/frontend/jupiter/" if cpanel else "/" + "/".join(base[len(WHM_DOCROOT) :]) + "/"
        )
        host = (self.headers.get("Host") or "127.0.0.1").rsplit(":", 1)[0]
        request = pagehost.CgiRequest(
            script=script,
            script_name=url_base + relative,
            request_uri=self.path,
            method=self.command,
            query=query,
            headers=list(self.headers.items()),
            body=body,
            remote_user=session.user,
            security_token=token,
            server_name=host,
            server_port=self.server.port,
            remote_addr=self.client_address[0],
            remote_port=int(self.client_address[1]),
            path_info=path_info,
            run_as_user=cpanel,
        )
        reply = pagehost.run_cgi(
            self.server.root,
            request,
            liveapi_dir=self.server.liveapi_dir,
            time_limit=self.server.cgi_time_limit,
        )
        ctype = next((v for k, v in reply.headers if k.lower() == "content-type"), "text/html")
        others = [
            (k, v) for k, v in reply.headers if k.lower() not in ("content-type", "content-length")
        ]
        self._send(reply.status, reply.body, ctype, others)
