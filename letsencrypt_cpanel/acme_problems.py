"""What the CA says when it refuses, in our words (RFC 8555 §6.7), and the network that retries.

Split from `acme_client.py`, which is the only other module that touches the `acme` package:
`PatientNetwork` retries `badNonce` with the nonce the error carried (RFC 8555 §6.5), and
`translated()` turns the library's and the network's exceptions into ours (`errors.py`), the
original kept as `__cause__`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import requests
from acme import client as acme_client_lib
from acme import errors as acme_errors
from acme import messages
from josepy.errors import DeserializationError

from .errors import AcmeError, ChallengeFailed, Error, RateLimited

# Each badNonce costs one round trip (the error carries a fresh nonce), so the budget is generous:
# at Pebble's 50 % test rejection, 16 attempts still lost about one request in 65,000 (seen in CI).
BAD_NONCE_RETRIES = 40

# What a person can do about each RFC 8555 §6.7 error type.
ADVICE = {
    "dns": "the CA could not look the name up in DNS. Check that the domain's nameservers "
    "answer and that the name has an A record pointing at this server.",
    "connection": "the CA could not connect to the site. Check that the name's DNS points at "
    "this server and that no firewall blocks port 80.",
    "unauthorized": "the CA did not get the expected answer from the site. Check that the "
    "name's DNS points at this server and that no .htaccess rule redirects or blocks "
    "/.well-known/acme-challenge/.",
    "incorrectResponse": "the site served something other than the challenge file. Check "
    ".htaccess redirects and rewrite rules, and any proxy or CDN in front of the site.",
    "caa": "a CAA record of the domain does not allow this CA. Add one that allows it "
    '(e.g. 0 issue "letsencrypt.org") or remove the CAA records.',
    "tls": "the CA's TLS connection to the site failed. Check the site's HTTPS setup.",
    "rejectedIdentifier": "the CA will not issue for this name (a blocked or non-public name). "
    "Remove it from the certificate.",
    "externalAccountRequired": "this certificate authority requires External Account Binding. "
    "Set the key id with `le-cp config set eab_kid KID` and the HMAC key with "
    "`le-cp config set eab_hmac_key` (on standard input), as the CA gave them to you.",
}


class Problem(Exception):
    """An RFC 7807 problem from the CA, with the response's Retry-After (the library drops it)."""

    def __init__(self, error: messages.Error, retry_after: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class PatientNetwork(acme_client_lib.ClientNetwork):
    """ClientNetwork whose every signed request survives `badNonce` (RFC 8555 §6.5)."""

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for _retry in range(BAD_NONCE_RETRIES):
            try:
                return self._post_once(*args, **kwargs)
            except Problem as problem:
                if problem.error.code != "badNonce":
                    raise
        return self._post_once(*args, **kwargs)

    def _post_once(
        self, url: str, obj: Any, content_type: str = "application/jose+json", **kwargs: Any
    ) -> requests.Response:
        new_nonce_url = kwargs.pop("new_nonce_url", None)
        data = self._wrap_in_jws(obj, self._get_nonce(url, new_nonce_url), url)
        kwargs.setdefault("headers", {"Content-Type": content_type})
        response: requests.Response = self._send_request("POST", url, data=data, **kwargs)
        # Error responses carry a fresh nonce too: keeping it makes the retry one round trip.
        if self.REPLAY_NONCE_HEADER in response.headers:
            self._add_nonce(response)
        try:
            self._check_response(response, content_type=content_type)
        except messages.Error as error:
            raise Problem(error, response.headers.get("Retry-After")) from error
        return response


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def parse_retry_after(header: str | None, detail: str, now: dt.datetime) -> dt.datetime | None:
    """When a rate limit ends: the Retry-After header (seconds or HTTP date), else a date in
    the detail ("retry after 2026-01-02 03:04:05 UTC", Let's Encrypt's wording)."""
    if header:
        if header.strip().isdigit():
            return now + dt.timedelta(seconds=int(header.strip()))
        try:
            when = email.utils.parsedate_to_datetime(header)
            return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
        except (TypeError, ValueError):
            pass
    found = re.search(r"retry after (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)", detail, re.IGNORECASE)
    if found:
        return dt.datetime.fromisoformat(found.group(1).replace(" ", "T")).replace(
            tzinfo=dt.timezone.utc
        )
    return None


def from_problem(error: messages.Error, retry_after: str | None, names: Sequence[str]) -> Error:
    code = error.code or str(error.typ).rsplit(":", 1)[-1]
    detail = error.detail or error.title or error.description or code
    if code == "rateLimited":
        return RateLimited(detail, parse_retry_after(retry_after, detail, utcnow()))
    domain = error.identifier.value if error.identifier else ""
    if not domain and error.subproblems:
        sub = error.subproblems[0]
        domain = sub.identifier.value if sub.identifier else ""
    who = domain or ", ".join(names)
    if code == "rejectedIdentifier":
        return AcmeError(f"{who}: {detail}; {ADVICE[code]}", kind=code, detail=detail)
    if code == "externalAccountRequired":
        return AcmeError(f"{detail}: {ADVICE[code]}", kind=code, detail=detail)
    if code in ADVICE:
        return ChallengeFailed(who, f"{detail}; {ADVICE[code]}", kind=code)
    return AcmeError(f"The certificate authority refused: {detail}", kind=code, detail=detail)


@contextmanager
def translated(names: Sequence[str] = ()) -> Iterator[None]:
    """Turn the library's and the network's exceptions into ours, keeping them as __cause__."""
    try:
        yield
    except Problem as problem:
        raise from_problem(problem.error, problem.retry_after, names) from problem.error
    except messages.Error as error:
        raise from_problem(error, None, names) from error
    except requests.RequestException as exc:
        raise AcmeError(
            f"The certificate authority cannot be reached ({exc.__class__.__name__}). "
            "Check the server's network and the directory URL.",
            kind="network",
            detail=str(exc),
        ) from exc
    except (acme_errors.Error, DeserializationError) as exc:
        raise AcmeError(
            f"The certificate authority's answer was not understood: {exc}",
            kind="protocol",
            detail=str(exc),
        ) from exc
