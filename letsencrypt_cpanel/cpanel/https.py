"""HTTPS to cpsrvd over pinned TLS (requests), and the WHM API 1 transport built on it.

Every request has a timeout and a bounded body; every failure to get a well-formed answer (a
refused connection, a TLS mismatch, a non-2xx status, a timeout, a dropped or truncated body)
becomes `CpanelTransportError` whose message never quotes the body or the URL's secrets. The
requests/urllib3 exception is not chained (`from None`) because its text holds the URL, and a
login URL holds the session secret; its class name is kept in the message instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from ..config import Secrets, Settings
from ..errors import CpanelTransportError
from ..fork_gate import openssl_in_use
from .envelope import Args, check_whm_envelope, decode_json, decode_json_stream, expand_args
from .quirks import MAX_RESPONSE_BYTES
from .tls import PinnedTLS, is_verification_failure
from .whm import WhmAPI

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class PinnedAdapter(HTTPAdapter):
    """An adapter whose pools use the pinned `ssl.SSLContext` and skip the hostname check.

    `cert_verify` is overridden because older requests versions point `ca_certs` at certifi's
    bundle, which urllib3 would then load into our context next to the pin.
    """

    def __init__(self, tls: PinnedTLS) -> None:
        self._context = tls.ssl_context()
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


@dataclass(frozen=True)
class HttpsReply:
    status: int
    content_type: str
    body: bytes = field(repr=False)
    cookies: Mapping[str, str] = field(repr=False)
    location: str = field(default="", repr=False)


@dataclass(frozen=True)
class _Call:
    """One request as `PinnedHttpsClient` sends it (and sends again after a re-read pin)."""

    method: str
    url: str = field(repr=False)  # a login URL holds the session secret
    module: str
    func: str
    data: list[tuple[str, str]] | None = field(repr=False)
    headers: Mapping[str, str] | None = field(repr=False)


class PinnedHttpsClient:
    """requests over pinned TLS. `request` raises `CpanelTransportError`; when the pin does not
    match and the pin came from root's file, the file is re-read once (cPanel may have renewed
    its certificate) before giving up. No I/O in the constructor."""

    def __init__(
        self,
        tls: PinnedTLS,
        *,
        timeout: float = 60.0,
        max_bytes: int = MAX_RESPONSE_BYTES,
        transport_name: str = "https",
    ) -> None:
        self.tls = tls
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.transport_name = transport_name
        self._session: requests.Session | None = None

    def _http(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.trust_env = False  # loopback only: no proxies, no .netrc credentials
            session.mount("https://", PinnedAdapter(self.tls))
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def request(
        self,
        method: str,
        url: str,
        *,
        module: str,
        func: str,
        data: list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpsReply:
        """One request, redirects not followed. Raises `CpanelTransportError`."""

        def read(response: requests.Response, deadline: float) -> HttpsReply:
            body = bytearray()
            for chunk in self._chunks(response, module, func, deadline):
                body += chunk
            return HttpsReply(
                status=response.status_code,
                content_type=response.headers.get("Content-Type", ""),
                body=bytes(body),
                cookies={c.name: c.value or "" for c in response.cookies},
                location=response.headers.get("Location", ""),
            )

        return self._pinned(_Call(method, url, module, func, data, headers), read)

    def request_json(
        self,
        method: str,
        url: str,
        *,
        module: str,
        func: str,
        data: list[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        object_hook: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Any:
        """One request whose 2xx answer is JSON, decoded as it arrives (`decode_json_stream`):
        the body is never held whole. Raises `CpanelTransportError` (also for another status)."""

        def read(response: requests.Response, deadline: float) -> Any:
            if not 200 <= response.status_code < 300:
                raise self._error(module, func, f"cPanel answered HTTP {response.status_code}")
            chunks = self._chunks(response, module, func, deadline)
            return decode_json_stream(
                chunks, module, func, transport=self.transport_name, object_hook=object_hook
            )

        return self._pinned(_Call(method, url, module, func, data, headers), read)

    def _pinned(self, call: _Call, read: Callable[[requests.Response, float], _T]) -> _T:
        """`_request_once`; when the pin does not match, once more with the re-read pin."""
        module, func = call.module, call.func
        if not call.url.startswith("https://"):
            raise CpanelTransportError(
                module, func, ["refusing a non-HTTPS URL"], transport=self.transport_name
            )
        try:
            return self._request_once(call, read)
        except requests.exceptions.SSLError as exc:
            if not is_verification_failure(exc):
                raise self._error(module, func, "the TLS handshake with cPanel failed") from None
            fresh = self.tls.reloaded()
            if fresh is None:
                raise self._error(
                    module, func, "cPanel's certificate does not match the pinned one"
                ) from None
        log.info("cPanel's service certificate changed; retrying with the new pin")
        self.tls = fresh
        self.close()
        try:
            return self._request_once(call, read)
        except requests.exceptions.SSLError:
            raise self._error(
                module, func, "cPanel's certificate does not match the pinned one"
            ) from None

    def _error(self, module: str, func: str, reason: str) -> CpanelTransportError:
        return CpanelTransportError(module, func, [reason], transport=self.transport_name)

    def _request_once(self, call: _Call, read: Callable[[requests.Response, float], _T]) -> _T:
        # The whole exchange, body included, is one of root's TLS calls (fork_gate.py).
        with openssl_in_use():
            return self._exchange(call, read)

    def _exchange(self, call: _Call, read: Callable[[requests.Response, float], _T]) -> _T:
        module, func = call.module, call.func
        deadline = time.monotonic() + self.timeout
        try:
            response = self._http().request(
                call.method,
                call.url,
                data=call.data,
                headers=dict(call.headers or {}),
                timeout=(min(self.timeout, 10.0), self.timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.SSLError:
            raise
        except requests.exceptions.Timeout:
            raise self._error(module, func, f"no answer within {self.timeout:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise self._error(module, func, f"cannot reach cPanel ({type(exc).__name__})") from None
        with response:
            log.debug("%s %s -> HTTP %s", call.method, func, response.status_code)
            return read(response, deadline)

    def _chunks(
        self, response: requests.Response, module: str, func: str, deadline: float
    ) -> Iterator[bytes]:
        """The body as it arrives, bounded in size and time."""
        size = 0
        try:
            for chunk in response.iter_content(65536):
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._error(module, func, f"the answer exceeds {self.max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise self._error(module, func, f"no full answer within {self.timeout:g} s")
                yield chunk
        except requests.exceptions.Timeout:
            raise self._error(module, func, f"no full answer within {self.timeout:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise self._error(
                module, func, f"the answer was cut off ({type(exc).__name__})"
            ) from None


def require_json_reply(
    reply: HttpsReply,
    module: str,
    func: str,
    *,
    transport: str,
    object_hook: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """The decoded JSON of a 2xx reply, or `CpanelTransportError` (status, HTML, truncation)."""
    if not 200 <= reply.status < 300:
        raise CpanelTransportError(
            module, func, [f"cPanel answered HTTP {reply.status}"], transport=transport
        )
    return decode_json(reply.body, module, func, transport=transport, object_hook=object_hook)


class WhmHttpsTransport:
    """WHM API 1 over HTTPS with a WHM API token (cpanel-api.md §1.5): POST
    `/json-api/FUNC?api.version=1`, arguments in the form body (never the URL: certificates,
    keys and tokens travel here), `Authorization: whm USER:TOKEN`."""

    transport_name = "whm-https"

    def __init__(self, client: PinnedHttpsClient, base_url: str, user: str, token: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.user = user
        self._token = token

    def __repr__(self) -> str:
        return f"WhmHttpsTransport({self.base_url!r}, user={self.user!r})"

    def call_whm(self, func: str, args: Args) -> dict[str, Any]:
        return self.call_whm_parsed(func, args, None)

    def call_whm_parsed(
        self, func: str, args: Args, object_hook: Callable[[dict[str, Any]], Any] | None
    ) -> dict[str, Any]:
        """call_whm, the answer decoded as it arrives and each of its JSON objects passed
        through `object_hook` as it is read: a listing of 20,000 vhosts is ~35 MB of text and
        ~110 MB as dicts, ~25 MB as models (bench/)."""
        envelope = self.client.request_json(
            "POST",
            f"{self.base_url}/json-api/{func}?api.version=1",
            module="",
            func=func,
            data=expand_args(args),
            headers={"Authorization": f"whm {self.user}:{self._token}"},
            object_hook=object_hook,
        )
        return check_whm_envelope(func, envelope, transport=self.transport_name)


# WHM's listings grow with the server (fetch_ssl_vhosts: ~1.5-2 KB a vhost, so ~40 MB for
# 20,000 vhosts; bench/ saw the daemon refuse a whole cycle at the 20 MiB UAPI bound). Root asks
# only its own cpsrvd, over the pinned loopback TLS: the bound is against a broken server.
WHM_MAX_RESPONSE_BYTES = 512 * 1024 * 1024


def build_whm_api(
    settings: Settings, secrets: Secrets, tls: PinnedTLS, *, timeout: float | None = None
) -> WhmAPI:
    """Root's WHM API: `https://cpanel_host:whm_port` with the stored WHM token; each call within
    `timeout` seconds (default: the `cpanel_timeout` setting)."""
    client = PinnedHttpsClient(
        tls,
        timeout=settings.cpanel_timeout if timeout is None else timeout,
        max_bytes=WHM_MAX_RESPONSE_BYTES,
        transport_name="whm-https",
    )
    base = f"https://{settings.cpanel_host}:{settings.whm_port}"
    return WhmAPI(WhmHttpsTransport(client, base, settings.whm_user, secrets.whm_token))
