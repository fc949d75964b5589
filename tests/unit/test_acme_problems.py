"""acme_problems.from_problem: each RFC 8555 §6.7 error type it advises on becomes our own error,
naming the name and saying what to do; rate limits say when to retry (Retry-After, or the date in
Let's Encrypt's detail). The problems are real `acme.messages.Error` objects, as the library
decodes them from the CA's answers."""

from __future__ import annotations

import datetime as dt

import pytest
from acme import messages

from letsencrypt_cpanel import acme_problems
from letsencrypt_cpanel.errors import AcmeError, ChallengeFailed, RateLimited


def fqdn(name: str) -> messages.Identifier:
    return messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name)


def problem(code: str, detail: str, name: str | None = None, **kwargs: object) -> messages.Error:
    if name is not None:
        kwargs["identifier"] = fqdn(name)
    return messages.Error.with_code(code, detail=detail, **kwargs)


@pytest.mark.parametrize(
    ("code", "detail", "advice"),
    [
        ("dns", "DNS problem: NXDOMAIN looking up A for shop.test", "nameservers answer"),
        ("connection", "Fetching http://shop.test/: Connection refused", "port 80"),
        ("caa", "CAA record for shop.test prevents issuance", '0 issue "letsencrypt.org"'),
        ("unauthorized", "Invalid response from http://shop.test/: 404", ".htaccess rule"),
    ],
)
def test_validation_problems_name_the_name_and_say_what_to_do(
    code: str, detail: str, advice: str
) -> None:
    error = acme_problems.from_problem(problem(code, detail, "shop.test"), None, ["other.test"])
    assert type(error) is ChallengeFailed
    assert error.kind == code and error.domain == "shop.test"
    message = str(error)
    assert message.startswith("shop.test could not be validated: ")
    assert detail in message and advice in message
    assert acme_problems.ADVICE[code] in message


def test_the_name_comes_from_a_subproblem_when_the_problem_has_none() -> None:
    sub = problem("dns", "NXDOMAIN for www.shop.test", "www.shop.test")
    top = messages.Error.with_code("dns", detail="Some names failed", subproblems=[sub])
    error = acme_problems.from_problem(top, None, ["shop.test", "www.shop.test"])
    assert isinstance(error, ChallengeFailed) and error.domain == "www.shop.test"


def test_without_any_identifier_the_requested_names_are_named() -> None:
    error = acme_problems.from_problem(problem("caa", "CAA forbids"), None, ["a.test", "b.test"])
    assert isinstance(error, ChallengeFailed) and error.domain == "a.test, b.test"


def test_rate_limited_with_retry_after_seconds() -> None:
    before = acme_problems.utcnow()
    error = acme_problems.from_problem(
        problem("rateLimited", "too many new orders recently"), "3600", ["shop.test"]
    )
    after = acme_problems.utcnow()
    assert type(error) is RateLimited and error.kind == "rateLimited"
    assert error.retry_after is not None
    hour = dt.timedelta(hours=1)
    assert before + hour <= error.retry_after <= after + hour
    assert f"Try again after {error.retry_after:%Y-%m-%d %H:%M} UTC." in str(error)
    assert "too many new orders recently" in str(error)


def test_rate_limited_with_retry_after_http_date() -> None:
    error = acme_problems.from_problem(
        problem("rateLimited", "too many certificates"), "Wed, 21 Oct 2026 07:28:00 GMT", []
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after == dt.datetime(2026, 10, 21, 7, 28, tzinfo=dt.timezone.utc)
    assert "Try again after 2026-10-21 07:28 UTC." in str(error)


def test_rate_limited_with_lets_encrypts_retry_after_in_the_detail() -> None:
    detail = (
        "too many certificates (5) already issued for this exact set of identifiers in the "
        "last 168h0m0s, retry after 2026-01-02 03:04:05 UTC: see "
        "https://letsencrypt.org/docs/rate-limits/#new-certificates-per-exact-set-of-identifiers"
    )
    error = acme_problems.from_problem(problem("rateLimited", detail), None, ["shop.test"])
    assert isinstance(error, RateLimited)
    assert error.retry_after == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert "Try again after 2026-01-02 03:04 UTC." in str(error)


def test_rate_limited_without_a_time_says_later() -> None:
    error = acme_problems.from_problem(problem("rateLimited", "slow down"), None, [])
    assert isinstance(error, RateLimited) and error.retry_after is None
    assert str(error).endswith("Try again later.")


def test_rejected_identifier_and_unknown_types() -> None:
    rejected = acme_problems.from_problem(
        problem("rejectedIdentifier", "Policy forbids issuing for name", "bad.test"), None, []
    )
    assert type(rejected) is AcmeError and rejected.kind == "rejectedIdentifier"
    assert str(rejected).startswith("bad.test: Policy forbids issuing for name; ")
    other = acme_problems.from_problem(problem("serverInternal", "boom"), None, ["x.test"])
    assert type(other) is AcmeError and other.kind == "serverInternal"
    assert str(other) == "The certificate authority refused: boom"


def test_translated_keeps_the_problem_and_its_retry_after() -> None:
    error = problem("rateLimited", "too many failed authorizations recently")
    with pytest.raises(RateLimited) as caught, acme_problems.translated(["shop.test"]):
        raise acme_problems.Problem(error, "60")
    assert caught.value.__cause__ is error
    assert caught.value.retry_after is not None
