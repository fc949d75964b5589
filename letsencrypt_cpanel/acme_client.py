"""The ACME protocol side (RFC 8555): account, order, challenges, finalize, download.

The only module that imports `acme`. Everything it raises is ours (`errors.py`), with the
library's exception kept as `__cause__`. Two things differ from the library on purpose:
* every signed POST retries `badNonce` with the nonce the error carried (RFC 8555 §6.5), many
  times; the library retries once and fails often against a CA that rejects nonces;
* polling is our loop (0.05 s, doubling, capped at 2 s; `Retry-After` honoured; a deadline),
  not the library's fixed 1 s sleeps: against a quick CA an issuance takes well under 1 s.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from acme import client as acme_client_lib
from acme import errors as acme_errors
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.errors import DeserializationError
from josepy.jwa import ES256, ES384, RS256
from josepy.jwk import JWKEC, JWKRSA

from .challenges import ChallengeSolver
from .errors import AcmeError, ChallengeFailed, Error, RateLimited
from .keys import generate_private_key, load_private_key, make_csr, split_fullchain

# The library logs whole JWS payloads and responses at DEBUG (tokens, CSRs): keep them out.
logging.getLogger("acme.client").addFilter(lambda record: record.levelno > logging.DEBUG)

BAD_NONCE_RETRIES = 15
ACCOUNT_KEY_TYPE = "ecdsa:p-256"
DEFAULT_USER_AGENT = "letsencrypt-cpanel"
_FIRST_POLL, _MAX_POLL = 0.05, 2.0

# What a person can do about each RFC 8555 §6.7 error type.
_ADVICE = {
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
}


@dataclass(frozen=True)
class AcmeAccount:
    """An account at one CA: the directory it belongs to, its key (PEM) and its URL."""

    directory_url: str
    key_pem: str = field(repr=False)
    url: str


@dataclass(frozen=True)
class IssuedCertificate:
    """What an order produced: leaf + chain (PEM) and the order's URL (kept in the record)."""

    fullchain_pem: str
    cert_pem: str
    chain_pem: str
    order_url: str


class _Problem(Exception):
    """An RFC 7807 problem from the CA, with the response's Retry-After (the library drops it)."""

    def __init__(self, error: messages.Error, retry_after: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _PatientNetwork(acme_client_lib.ClientNetwork):
    """ClientNetwork whose every signed request survives `badNonce` (RFC 8555 §6.5)."""

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for _retry in range(BAD_NONCE_RETRIES):
            try:
                return self._post_once(*args, **kwargs)
            except _Problem as problem:
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
            raise _Problem(error, response.headers.get("Retry-After")) from error
        return response


def _jwk(key_pem: str) -> tuple[Any, Any]:
    """(JWK, JWS alg) for an account key: ES256/ES384 for P-256/P-384, RS256 for RSA."""
    key = load_private_key(key_pem)
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), RS256
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return JWKEC(key=key), ES384
    return JWKEC(key=key), ES256


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


def _from_problem(error: messages.Error, retry_after: str | None, names: Sequence[str]) -> Error:
    code = error.code or str(error.typ).rsplit(":", 1)[-1]
    detail = error.detail or error.title or error.description or code
    if code == "rateLimited":
        return RateLimited(detail, parse_retry_after(retry_after, detail, _utcnow()))
    domain = error.identifier.value if error.identifier else ""
    if not domain and error.subproblems:
        sub = error.subproblems[0]
        domain = sub.identifier.value if sub.identifier else ""
    who = domain or ", ".join(names)
    if code == "rejectedIdentifier":
        return AcmeError(f"{who}: {detail}; {_ADVICE[code]}", kind=code, detail=detail)
    if code in _ADVICE:
        return ChallengeFailed(who, f"{detail}; {_ADVICE[code]}", kind=code)
    return AcmeError(f"The certificate authority refused: {detail}", kind=code, detail=detail)


@contextmanager
def _translated(names: Sequence[str] = ()) -> Iterator[None]:
    """Turn the library's and the network's exceptions into ours, keeping them as __cause__."""
    try:
        yield
    except _Problem as problem:
        raise _from_problem(problem.error, problem.retry_after, names) from problem.error
    except messages.Error as error:
        raise _from_problem(error, None, names) from error
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


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def connect(
    directory_url: str,
    *,
    ca_bundle: str | None = None,
    account: AcmeAccount | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
) -> AcmeSession:
    """Fetch the directory (RFC 8555 §7.1.1) once and return a session. `ca_bundle`: a PEM file
    to trust instead of the system store. Raises AcmeError when the CA cannot be reached."""
    net = _PatientNetwork(verify_ssl=ca_bundle or True, user_agent=user_agent)  # type: ignore[arg-type]
    with _translated():
        directory = acme_client_lib.ClientV2.get_directory(directory_url, net)
    return AcmeSession(directory_url, directory, net, account)


class AcmeSession:
    """One conversation with one CA. Build it with `connect`. Not thread-safe."""

    def __init__(
        self, directory_url: str, directory: Any, net: _PatientNetwork, account: AcmeAccount | None
    ) -> None:
        self.directory_url = directory_url
        self._directory = directory
        self._net = net
        self._client = acme_client_lib.ClientV2(directory, net)
        self._jwk: Any = None
        self.account = account

    def _use_key(self, key_pem: str) -> None:
        self._jwk, self._net.alg = _jwk(key_pem)
        self._net.key = self._jwk
        self._net.account = None

    def _use_account(self, account: AcmeAccount) -> AcmeAccount:
        self._net.account = messages.RegistrationResource(
            body=messages.Registration(), uri=account.url
        )
        self.account = account
        return account

    def ensure_account(self, email: str | None = None) -> AcmeAccount:
        """The session's account, checked with the CA (onlyReturnExisting, RFC 8555 §7.3.1).

        Registered anew when there is none, or the CA no longer knows it (a restarted test
        CA): with the same key if the CA merely forgot it, with a fresh ECDSA P-256 key if the
        account was deactivated or the key is unusable. Callers save the result if it changed.
        """
        key_pem = ""
        if self.account is not None and self.account.directory_url == self.directory_url:
            key_pem = self.account.key_pem
            self._use_key(key_pem)
            query = messages.NewRegistration(only_return_existing=True)
            try:
                with _translated():
                    resp = self._post(self._directory["newAccount"], query)
                url = resp.headers.get("Location") or self.account.url
                if resp.json().get("status", "valid") == "valid":
                    return self._use_account(replace(self.account, url=url))
                key_pem = ""  # deactivated: that key cannot register again
            except AcmeError as exc:
                if exc.kind != "accountDoesNotExist":
                    raise
        if not key_pem:
            key_pem = generate_private_key(ACCOUNT_KEY_TYPE)
            self._use_key(key_pem)
        registration = messages.NewRegistration.from_data(
            email=email or None, terms_of_service_agreed=True
        )
        with _translated():
            regr = self._client.new_account(registration)
        return self._use_account(AcmeAccount(self.directory_url, key_pem, str(regr.uri)))

    def _post(self, url: str, obj: Any = None) -> requests.Response:
        return self._net.post(url, obj, new_nonce_url=self._directory["newNonce"])

    def _poll(self, url: str, deadline: float, busy: Sequence[str], what: str) -> Any:
        """POST-as-GET `url` until its status is not in `busy`; returns the JSON body."""
        delay = _FIRST_POLL
        while True:
            resp = self._post(url)
            body = resp.json()
            if body.get("status") not in busy:
                return body
            wait = delay
            retry_after = parse_retry_after(resp.headers.get("Retry-After"), "", _utcnow())
            if retry_after is not None:
                wait = max(0.0, (retry_after - _utcnow()).total_seconds())
            if time.monotonic() + wait > deadline:
                raise AcmeError(
                    f"The certificate authority did not finish {what} in time. "
                    "Try again in a few minutes.",
                    kind="timeout",
                )
            time.sleep(wait)
            delay = min(delay * 2, _MAX_POLL)

    def obtain_certificate(
        self,
        key_pem: str,
        names: Sequence[str],
        solver: ChallengeSolver,
        *,
        deadline: float,
        progress: Callable[[str], None] | None = None,
    ) -> IssuedCertificate:
        """Order, validate, finalize and download a certificate for `names` (RFC 8555 §7.4).

        `deadline`: seconds this may take from now (`Settings.order_deadline`). Every
        challenge is presented, then `solver.check`ed (a `SelfCheckFailed` is raised before
        any challenge is answered), then answered. Whatever was presented is cleaned up, also
        on failure. Raises AcmeError (RateLimited, ChallengeFailed, SelfCheckFailed, ...).
        """
        step = progress or (lambda _text: None)
        end = time.monotonic() + deadline
        if self._net.account is None or self.account is None:
            self.ensure_account()
        csr_pem = make_csr(key_pem, list(names))
        step("order")
        with _translated(names):
            order = self._client.new_order(csr_pem)
        todo = self._pick_challenges(order, solver, names)
        presented: list[tuple[str, str]] = []
        try:
            for domain, challb, key_auth in todo:
                token = challb.chall.encode("token")
                solver.present(domain, token, key_auth)
                presented.append((domain, token))
            for domain, challb, key_auth in todo:
                solver.check(domain, challb.chall.encode("token"), key_auth)
            with _translated(names):
                for domain, challb, _key_auth in todo:
                    step(f"validating {domain}")
                    self._client.answer_challenge(challb, challb.chall.response(self._jwk))
                for authzr in order.authorizations:
                    if authzr.body.status == messages.STATUS_VALID:
                        continue
                    body = self._poll(authzr.uri, end, ("pending", "processing"), "validating")
                    self._raise_if_invalid(messages.Authorization.from_json(body))
        finally:
            for domain, token in presented:
                solver.cleanup(domain, token)
        with _translated(names):
            step("finalizing")
            csr = x509.load_pem_x509_csr(csr_pem)
            resp = self._post(order.body.finalize, messages.CertificateRequest(csr=csr))
            body = resp.json()
            if body.get("status") != "valid":
                body = self._poll(order.uri, end, ("processing",), "issuing")
            final = messages.Order.from_json(body)
            if final.status != messages.STATUS_VALID or not final.certificate:
                err = final.error
                raise _Problem(err, None) if err else AcmeError("The order failed.", kind="order")
            step("downloading")
            fullchain = self._post(final.certificate).text
        leaf, chain = split_fullchain(fullchain)
        return IssuedCertificate(fullchain, leaf, chain, str(order.uri))

    def _pick_challenges(
        self, order: Any, solver: ChallengeSolver, names: Sequence[str]
    ) -> list[tuple[str, Any, str]]:
        """(domain, challenge, key authorization) per authorization still to be done."""
        todo = []
        for authzr in order.authorizations:
            authz = authzr.body
            domain = authz.identifier.value
            if authz.status == messages.STATUS_VALID:
                continue  # RFC 8555 §7.1.4: the CA may reuse a valid authorization
            if authz.status != messages.STATUS_PENDING:
                raise AcmeError(
                    f"{domain}: the authorization is {authz.status}; try again.",
                    kind="authorization",
                )
            offered: Mapping[str, Any] = {c.chall.typ: c for c in authz.challenges}
            usable = [offered[t] for t in solver.challenge_types if t in offered]
            if not usable:
                raise AcmeError(
                    f"{domain}: the CA offers {', '.join(offered) or 'no challenge'}, "
                    f"but this method solves only {', '.join(solver.challenge_types)}.",
                    kind="unsupportedChallenge",
                )
            challb = usable[0]
            todo.append((domain, challb, challb.chall.key_authorization(self._jwk)))
        return todo

    @staticmethod
    def _raise_if_invalid(authz: Any) -> None:
        if authz.status == messages.STATUS_VALID:
            return
        for challb in authz.challenges:
            if challb.error is not None:
                error = challb.error
                if error.identifier is None:
                    error = error.update(identifier=authz.identifier)
                raise _Problem(error, None)
        raise ChallengeFailed(authz.identifier.value, f"the authorization is {authz.status}")

    def revoke(self, cert_pem: str, reason: int = 0) -> None:
        """Revoke a certificate of this account (RFC 8555 §7.6). Raises AcmeError."""
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        if self._net.account is None:
            self.ensure_account()
        with _translated():
            self._client.revoke(cert, reason)
