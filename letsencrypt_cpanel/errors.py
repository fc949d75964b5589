"""One exception hierarchy for the whole library.

Edges (the CGI, the daemon, `le-cp`) catch `Error` and show `str(err)`: every message is written
for the person who will read it, and says what they can do. Exceptions carry their facts as fields
so callers never parse messages.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence


class Error(Exception):
    """Root of every error this library raises on purpose."""


class ConfigError(Error):
    """The configuration or secrets file is missing, unreadable or invalid."""


class CpanelAPIError(Error):
    """cPanel or WHM answered a call with a failure (or with something that is not an answer)."""

    def __init__(
        self, module: str, function: str, reasons: Sequence[str], *, transport: str = ""
    ) -> None:
        self.module = module
        self.function = function
        self.reasons = list(reasons)
        self.transport = transport
        joined = "; ".join(r for r in self.reasons if r) or "no reason given"
        where = f"{module}::{function}" if module else function
        super().__init__(f"cPanel refused {where}: {joined}")


class CpanelTransportError(CpanelAPIError):
    """The call never got a well-formed answer: connection, TLS, HTTP status, HTML, truncation."""


class NameRefused(Error):
    """A name the user asked for cannot be used (not theirs, malformed, or too many)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name!r}: {reason}" if name else reason)


class RecordError(Error):
    """The user's record could not be read or written."""


class RecordMovedAside(RecordError):
    """The record could not be parsed; it was kept under `moved_to` and a fresh one started."""

    def __init__(self, moved_to: str) -> None:
        self.moved_to = moved_to
        super().__init__(
            f"The certificate record could not be read; it was kept as {moved_to} "
            "and a new one was started."
        )


class WorkerError(Error):
    """A job run as a user failed, hung, or sent back something that is not a summary."""


class WorkerTimeout(WorkerError):
    def __init__(self, user: str, seconds: float) -> None:
        self.user = user
        self.seconds = seconds
        super().__init__(f"The job for {user} took longer than {seconds:g} s and was stopped.")


class AcmeError(Error):
    """The ACME CA refused or failed a request. `kind` is the RFC 8555 error type's last part."""

    def __init__(self, message: str, *, kind: str = "", detail: str = "") -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(message)


class RateLimited(AcmeError):
    def __init__(self, detail: str, retry_after: _dt.datetime | None) -> None:
        self.retry_after = retry_after
        when = (
            f" Try again after {retry_after:%Y-%m-%d %H:%M} UTC."
            if retry_after
            else " Try again later."
        )
        super().__init__(
            f"The certificate authority's rate limit was reached: {detail}.{when}",
            kind="rateLimited",
            detail=detail,
        )


class ChallengeFailed(AcmeError):
    """A name could not be validated (by our self-check or by the CA)."""

    def __init__(self, domain: str, detail: str, *, kind: str = "unauthorized") -> None:
        self.domain = domain
        super().__init__(f"{domain} could not be validated: {detail}", kind=kind, detail=detail)


class SelfCheckFailed(ChallengeFailed):
    """Our own check failed before the CA was asked, so no failed validation was spent."""

    def __init__(self, domain: str, detail: str) -> None:
        super().__init__(domain, detail, kind="selfcheck")


class InstallFailed(Error):
    """The certificate was issued and saved, but cPanel did not install it. It is retried from
    the saved copy, not ordered again."""
