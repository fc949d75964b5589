"""What a failure means for the site owner: the HTTP status the page answers with, and the text,
ending with what they can do about it.

The library's messages are already written for the owner (errors.py); this adds the next step
where the message alone leaves them stuck. Only the light error classes are used, so this module
never imports the issuance code.
"""

from __future__ import annotations

import datetime as dt

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
from .responses import BadRequest, Response, json_response

# `ChallengeFailed.kind` of the dns-01 failures (dns_challenge.py, dns_wait.py; named here, not
# imported: those modules load dnspython, which the page's light modules must not).
DNS_ZONE = "dns-zone"  # no zone of this account holds the name (its DNS is elsewhere)
DNS_PROPAGATION = "dns-propagation"  # the zone's nameservers never served the TXT record
DNS_EDIT = "dns"  # cPanel refused to add the TXT record
ALREADY_REVOKED = "alreadyRevoked"  # RFC 8555 §6.7

_KIND_STATUS = {
    DNS_ZONE: 422,  # the request cannot work for this name as things stand; no retry helps
    DNS_PROPAGATION: 504,  # the nameservers did not answer in time
    ALREADY_REVOKED: 409,
}


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
    if isinstance(exc, RateLimited):
        return 429  # RFC 6585 §4: the client (this account) asked too often; wait, then retry
    if isinstance(exc, AcmeError) and exc.kind in _KIND_STATUS:
        return _KIND_STATUS[exc.kind]
    if isinstance(exc, AcmeError | InstallFailed | CpanelAPIError):
        return 502
    return 500


def headers_for(exc: BaseException) -> list[tuple[str, str]]:
    """Headers that go with the failure's status: Retry-After (RFC 9110 §10.2.3, an HTTP-date,
    so it stays right however long the reply takes) when the CA said when its limit ends."""
    when = exc.retry_after if isinstance(exc, RateLimited) else None
    if when is None:
        return []
    import email.utils  # here: only a rate-limited failure needs it, never Home

    if when.tzinfo is None:  # the library's times without a zone are UTC
        when = when.replace(tzinfo=dt.timezone.utc)
    return [("Retry-After", email.utils.format_datetime(when.astimezone(dt.timezone.utc), True))]


def json_failure(exc: BaseException) -> Response:
    """The JSON API's answer to a failure: its status, its advice, and its headers."""
    reply = json_response(status_for(exc), success=False, errors=[message_for(exc)])
    reply.headers.extend(headers_for(exc))
    return reply


def message_for(exc: BaseException) -> str:
    text = str(exc) or "Something went wrong."
    if isinstance(exc, RateLimited):
        return text
    if isinstance(exc, ChallengeFailed) and exc.kind == DNS_ZONE:
        return (
            f"{text} A wildcard, and the DNS choice, work only for a domain whose DNS this "
            "server hosts. Untick Wildcard and choose Automatic or HTTP, or move the domain's "
            "DNS to this server (your host can tell you its nameservers), then try again."
        )
    if isinstance(exc, ChallengeFailed) and exc.kind == DNS_PROPAGATION:
        return (
            f"{text} The domain's nameservers are probably not this server's. Check at your "
            "domain registrar which nameservers the domain uses; if they are elsewhere, untick "
            "Wildcard and choose Automatic or HTTP. If they are this server's, try again in a "
            "few minutes."
        )
    if isinstance(exc, ChallengeFailed) and exc.kind == DNS_EDIT:
        return (
            f"{text} Try again in a few minutes; if it keeps failing, send this message to "
            "your hosting provider."
        )
    if isinstance(exc, AcmeError) and exc.kind == ALREADY_REVOKED:
        return (
            "The certificate authority says this certificate is already revoked. Use Remove "
            "(without revoking) to take it off the website."
        )
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
