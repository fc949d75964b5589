"""Requests and responses of the WSGI apps: parsed once, small, no framework.

A request's body is read once, bounded in size, and decoded as a form or as JSON. A response
carries security headers on every answer: no caching (pages show what a user owns), no
framing by other sites, no referrer (cPanel URLs hold the session token), and a Content
Security Policy that lets only this response's own inline script and style run.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

MAX_BODY_BYTES = 1024 * 1024
MAX_FIELDS = 1000
# The statuses the pages answer most, so that a view need not import `http` (its HTTPStatus
# enum is built at import, in every CGI process); any other comes from HTTPStatus (422 too: its
# phrase changed in Python 3.13).
_REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


class BadRequest(Exception):
    """The request itself is malformed (not an error of the library: nothing was attempted)."""


@dataclass
class Request:
    environ: Mapping[str, Any]
    method: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    json_body: dict[str, Any] | None
    wants_json: bool

    @classmethod
    def parse(cls, environ: Mapping[str, Any]) -> Request:
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        query = _parse_form(str(environ.get("QUERY_STRING") or ""))
        accept = str(environ.get("HTTP_ACCEPT") or "")
        wants_json = "application/json" in accept.lower()
        form: dict[str, list[str]] = {}
        json_body: dict[str, Any] | None = None
        if method == "POST":
            body = _read_body(environ)
            ctype = str(environ.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()
            if ctype == "application/json":
                try:
                    loaded = json.loads(body or b"{}")
                # Nesting deeper than the interpreter's recursion limit raises RecursionError.
                except (ValueError, RecursionError) as exc:
                    raise BadRequest("The request body is not valid JSON.") from exc
                if not isinstance(loaded, dict):
                    raise BadRequest("The request body must be a JSON object.")
                json_body = loaded
            elif body:
                form = _parse_form(body.decode("utf-8", "replace"))
        return cls(environ, method, query, form, json_body, wants_json)

    def values(self, *names: str) -> list[str]:
        """Every value given for the first of `names` present, from the JSON body, the form,
        then the query string. JSON lists and scalars are turned into strings."""
        for name in names:
            if self.json_body is not None and name in self.json_body:
                raw = self.json_body[name]
                items = raw if isinstance(raw, list) else [raw]
                return ["" if v is None else _json_text(v) for v in items]
            if name in self.form:
                return self.form[name]
            if name in self.query:
                return self.query[name]
        return []

    def value(self, *names: str) -> str:
        found = self.values(*names)
        return found[0] if found else ""

    def env(self, name: str) -> str:
        return str(self.environ.get(name) or "")


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else json.dumps(value)


def _parse_form(text: str) -> dict[str, list[str]]:
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise BadRequest("The request has too many fields.") from exc


def _read_body(environ: Mapping[str, Any]) -> bytes:
    try:
        length = int(str(environ.get("CONTENT_LENGTH") or "0"))
    except ValueError as exc:
        raise BadRequest("The request's Content-Length is not a number.") from exc
    if length > MAX_BODY_BYTES:
        raise BadRequest("The request is too large.")
    if length <= 0:
        return b""
    stream = environ["wsgi.input"]
    data: bytes = stream.read(length)
    return data


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    nonce: str = ""

    def wsgi(self, start_response: Any) -> Iterable[bytes]:
        phrase = _REASONS.get(self.status) or _phrase(self.status)
        csp = (
            "default-src 'none'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
        )
        if self.nonce:
            csp += f"; script-src 'nonce-{self.nonce}'; style-src 'nonce-{self.nonce}'"
        headers = [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "SAMEORIGIN"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", csp),
            *self.headers,
        ]
        start_response(f"{self.status} {phrase}", headers)
        return [self.body]


def _phrase(status: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status).phrase


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def json_response(
    status: int, *, success: bool, data: Any = None, errors: Iterable[str] = ()
) -> Response:
    """The JSON API's one reply shape: {"success", "errors", "data"} (prior-art §1.3)."""
    body = {"success": success, "errors": list(errors), "data": data}
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    return Response(status, text.encode("utf-8"), "application/json; charset=utf-8")


def redirect(location: str) -> Response:
    """303 See Other: after a POST the browser GETs the page (refresh never repeats the POST)."""
    return Response(303, b"", "text/plain; charset=utf-8", [("Location", location)])
