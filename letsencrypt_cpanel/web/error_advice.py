"""What a failure means for the site owner: the HTTP status the page answers with, and the text,
ending with what they can do about it.

The library's messages are already written for the owner (errors.py); this adds the next step
where the message alone leaves them stuck. Only the light error classes are used, so this module
never imports the issuance code.
"""

from __future__ import annotations

from ..errors import (
    AcmeError,
    ChallengeFailed,
    ConfigError,
    CpanelAPIError,
    Error,
    InstallFailed,
    NameRefused,
    RateLimited,
    RecordError,
)
from .responses import BadRequest


class PageError(Exception):
    """A request the page refuses before any work: bad input, CSRF, a vhost not the user's."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def status_for(exc: BaseException) -> int:
    if isinstance(exc, PageError):
        return exc.status
    if isinstance(exc, BadRequest | NameRefused):
        return 400
    if isinstance(exc, RecordError):
        return 409  # in practice: a renewal holds the user's lock right now
    if isinstance(exc, AcmeError | InstallFailed | CpanelAPIError):
        return 502
    return 500


def message_for(exc: BaseException) -> str:
    text = str(exc) or "Something went wrong."
    if isinstance(exc, RateLimited):
        return text
    if isinstance(exc, ChallengeFailed):
        return (
            f"{text} Make sure this name points at this server (its DNS A and AAAA records) and "
            f"that nothing blocks http://{exc.domain}/.well-known/acme-challenge/ (an .htaccess "
            "rule, a redirect to another host, a proxy such as a CDN), then try again, or untick "
            "that name."
        )
    if isinstance(exc, AcmeError):
        return (
            f"The certificate authority refused or failed the request: {text} Try again in a few "
            "minutes; if it keeps failing, send this message to your hosting provider."
        )
    if isinstance(exc, CpanelAPIError):
        return (
            f"{text}. Try again in a few minutes; if it keeps failing, send this message to your "
            "hosting provider."
        )
    if isinstance(exc, ConfigError):
        return (
            f"The plugin is not set up correctly on this server ({text}). "
            "Please tell your hosting provider."
        )
    if isinstance(exc, Error | PageError | BadRequest):
        return text
    return "Something went wrong on the server. Try again; if it keeps failing, tell your host."
