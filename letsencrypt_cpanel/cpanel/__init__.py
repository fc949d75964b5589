"""One typed cPanel & WHM API over interchangeable transports.

`UserAPI` (UAPI, as one user) and `WhmAPI` (WHM API 1, as root) have one method per call and
return the frozen dataclasses of `models`. Transports check the envelope once and raise
`CpanelAPIError` / `CpanelTransportError`:

- `LiveAPITransport` / `build_liveapi_from_env` -- the cPanel CGI, as the user;
- `user_session(session, tls)` -- a worker, as the user, over HTTPS with a WHM-made session;
- `WhmHttpsTransport` / `build_whm_api` -- root, over HTTPS with the WHM token;
- `CommandLineTransport` -- install-time calls that carry no secret.

TLS to cPanel is pinned to cPanel's own service certificate (`PinnedTLS`, `load_pinned_tls`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .commandline import CommandLineTransport
from .envelope import Args, UapiCallFailed, UapiTransport, WhmTransport
from .liveapi import LiveAPITransport, build_liveapi_from_env
from .models import (
    Account,
    CertificateFacts,
    DomainList,
    InstalledHost,
    InstallResult,
    NewRecord,
    ServiceCert,
    SslVhost,
    StoredCert,
    StoredKey,
    UserSession,
    Vhost,
    VhostKind,
    ZoneLine,
    soa_serial,
)
from .uapi import UserAPI
from .whm import WhmAPI

if TYPE_CHECKING:
    from .https import PinnedHttpsClient, WhmHttpsTransport, build_whm_api
    from .session import SessionUapiTransport, user_session
    from .tls import PinnedTLS, load_pinned_tls

# The HTTPS transports pull in `requests` and `cryptography`; the cPanel page is a CGI started
# per request that only needs LiveAPI, so these load on first use (PEP 562).
_LAZY = {
    "PinnedHttpsClient": "https",
    "WhmHttpsTransport": "https",
    "build_whm_api": "https",
    "SessionUapiTransport": "session",
    "user_session": "session",
    "PinnedTLS": "tls",
    "load_pinned_tls": "tls",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "Account",
    "Args",
    "CertificateFacts",
    "CommandLineTransport",
    "DomainList",
    "InstallResult",
    "InstalledHost",
    "LiveAPITransport",
    "NewRecord",
    "PinnedHttpsClient",
    "PinnedTLS",
    "ServiceCert",
    "SessionUapiTransport",
    "SslVhost",
    "StoredCert",
    "StoredKey",
    "UapiCallFailed",
    "UapiTransport",
    "UserAPI",
    "UserSession",
    "Vhost",
    "VhostKind",
    "WhmAPI",
    "WhmHttpsTransport",
    "WhmTransport",
    "ZoneLine",
    "build_liveapi_from_env",
    "build_whm_api",
    "load_pinned_tls",
    "soa_serial",
    "user_session",
]
