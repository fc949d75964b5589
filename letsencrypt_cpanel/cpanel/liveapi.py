"""UAPI through cpsrvd's LiveAPI socket: what the cPanel CGI, running as the user, uses.

Protocol (cpanel-api.md §1.3; prior-art §4.6a): connect to `$CPANEL_CONNECT_SOCKET`; every
request is `<decimal length>\\n<payload>` and every request, `<cpaneljson enable="1">` included,
is answered by one `<cpanelresult>...</cpanelresult>` (after an optional `<?xml ...?>` prolog),
read until the text holds `</cpanelresult>`: first the switch to JSON, then one
`<cpanelaction>{json}</cpanelaction>` per call. The UAPI result sits under `result`. An
`<error>...</error>` may come before the JSON; an empty `<cpanelresult></cpanelresult>` means
an error cPanel could only log.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping
from typing import Any

from ..errors import CpanelAPIError, CpanelTransportError
from .envelope import Args, check_uapi_result, expand_args
from .quirks import MAX_RESPONSE_BYTES, strip_error_prefix
from .uapi import UserAPI

TRANSPORT = "liveapi"
ENABLE_JSON = '<cpaneljson enable="1">'
END_TAG = "</cpanelresult>"
START_TAG = "<cpanelresult>"
_XML_PROLOG = re.compile(r"<\?xml[^>]*\?>")


def frame(payload: str) -> bytes:
    """One LiveAPI request: `<byte length>\\n<payload>` (cpanel-api.md §1.3)."""
    data = payload.encode("utf-8")
    return str(len(data)).encode("ascii") + b"\n" + data


def uapi_action(module: str, func: str, args: Args) -> str:
    """The `<cpanelaction>` payload of a UAPI call; multi-values use the `name-N` form."""
    body = {
        "module": module,
        "reqtype": "exec",
        "func": func,
        "apiversion": "uapi",
        "args": dict(expand_args(args)),
    }
    return f"<cpanelaction>\n{json.dumps(body)}\n</cpanelaction>"


def reply_complete(buffer: bytes | bytearray, new_bytes: int | None = None) -> bool:
    """Whether the reply's end tag has arrived; with `new_bytes`, only the fresh tail is searched
    (so a 20 MiB reply read in 64 KiB chunks is not rescanned from the start every time)."""
    tag = END_TAG.encode("ascii")
    start = 0 if new_bytes is None else max(0, len(buffer) - new_bytes - len(tag))
    return buffer.find(tag, start) >= 0


def parse_reply(text: str, module: str, func: str) -> dict[str, Any]:
    """The UAPI result object inside one `<cpanelresult>` reply.

    Tolerates an `<error>` before the JSON (prior-art §4.6a); an empty reply raises
    `CpanelAPIError` with cPanel's error text when there was one (cpanel-api.md §1.3).
    """
    end = text.rfind(END_TAG)
    if end < 0:
        raise CpanelTransportError(
            module, func, ["the LiveAPI reply ended early"], transport=TRANSPORT
        )
    inner = _XML_PROLOG.sub("", text[:end]).replace(START_TAG, "")
    json_text, warnings = strip_error_prefix(inner)
    if not json_text:
        raise CpanelAPIError(
            module, func, warnings or ["cPanel returned an empty result"], transport=TRANSPORT
        )
    if not json_text.startswith("{"):
        # cpanelgo only takes JSON right after a tag (prior-art §4.6a); anything else (an HTML
        # page, XML because JSON mode is off) is not an answer.
        raise CpanelTransportError(
            module, func, ["the LiveAPI reply holds no JSON"], transport=TRANSPORT
        )
    try:
        reply = json.loads(json_text)
    except json.JSONDecodeError as exc:
        # `from None`: the decode error keeps the whole reply text, which must not reach a log.
        raise CpanelTransportError(
            module,
            func,
            [f"the LiveAPI reply is not valid JSON at byte {exc.pos}"],
            transport=TRANSPORT,
        ) from None
    # UAPI replies wrap the result object under `result` (cpanel-api.md §1.3); accept a bare one.
    result = reply.get("result") if isinstance(reply, dict) and "result" in reply else reply
    return check_uapi_result(module, func, result, transport=TRANSPORT)


class LiveAPITransport:
    """A `UapiTransport` over the LiveAPI socket. The connection opens on the first call and is
    reused; `close()` (or the context manager) closes it. Not thread-safe."""

    def __init__(
        self,
        socket_path: str,
        *,
        timeout: float = 60.0,
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._sock: socket.socket | None = None

    def __enter__(self) -> LiveAPITransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self, module: str, func: str) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
            sock.sendall(frame(ENABLE_JSON))
            self._sock = sock
            self._read_reply(sock, module, func)  # the switch's own answer, not needed
        except TimeoutError as exc:
            self.close()
            raise CpanelTransportError(
                module, func, [f"no LiveAPI answer within {self.timeout:g} s"], transport=TRANSPORT
            ) from exc
        except OSError as exc:
            sock.close()
            self._sock = None
            raise CpanelTransportError(
                module,
                func,
                [f"cannot reach the LiveAPI socket: {exc.strerror or exc}"],
                transport=TRANSPORT,
            ) from exc
        return sock

    def call_uapi(self, module: str, func: str, args: Args) -> dict[str, Any]:
        sock = self._connect(module, func)
        try:
            sock.sendall(frame(uapi_action(module, func, args)))
            buffer = self._read_reply(sock, module, func)
        except TimeoutError as exc:
            self.close()
            raise CpanelTransportError(
                module, func, [f"no LiveAPI answer within {self.timeout:g} s"], transport=TRANSPORT
            ) from exc
        except OSError as exc:
            self.close()
            raise CpanelTransportError(
                module,
                func,
                [f"the LiveAPI connection failed: {exc.strerror or exc}"],
                transport=TRANSPORT,
            ) from exc
        return parse_reply(buffer.decode("utf-8", errors="replace"), module, func)

    def _read_reply(self, sock: socket.socket, module: str, func: str) -> bytes:
        buffer = bytearray()
        chunk = b""
        while not reply_complete(buffer, len(chunk)):
            chunk = sock.recv(65536)
            if not chunk:
                self.close()
                raise CpanelTransportError(
                    module, func, ["the LiveAPI socket closed mid-reply"], transport=TRANSPORT
                )
            buffer += chunk
            if len(buffer) > self.max_bytes:
                self.close()
                raise CpanelTransportError(
                    module,
                    func,
                    [f"the LiveAPI reply exceeds {self.max_bytes} bytes"],
                    transport=TRANSPORT,
                )
        return bytes(buffer)


def build_liveapi_from_env(env: Mapping[str, str], *, timeout: float = 60.0) -> UserAPI:
    """The user's API inside a cPanel CGI: `CPANEL_CONNECT_SOCKET`, or the older PHP name
    `CPANEL_PHPCONNECT_SOCKET` (cpanel-api.md §1.3). Raises `CpanelTransportError` without one."""
    path = env.get("CPANEL_CONNECT_SOCKET") or env.get("CPANEL_PHPCONNECT_SOCKET") or ""
    if not path:
        raise CpanelTransportError(
            "",
            "",
            ["CPANEL_CONNECT_SOCKET is not set: the page must run inside cPanel as a .live.cgi"],
            transport=TRANSPORT,
        )
    return UserAPI(LiveAPITransport(path, timeout=timeout))
