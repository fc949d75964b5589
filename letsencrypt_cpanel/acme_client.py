"""The ACME protocol side (RFC 8555): account, order, challenges, finalize, download, revoke.

The only module, with its split-off `acme_problems.py`, that imports `acme`. Everything it raises
is ours (`errors.py`), with the library's exception kept as `__cause__`. Differences from the
library, on purpose:
* every signed POST retries `badNonce` with the nonce the error carried (RFC 8555 §6.5);
* polling is our loop (0.05 s, doubling, capped at 2 s; `Retry-After` honoured; a deadline);
* the order is ours too, so it can name the certificate it replaces (RFC 9773 §5) and a
  profile, and the alternate chains are fetched from the certificate's `Link` headers (§7.4.2);
* External Account Binding (§7.3.4) is computed by root, never here: `ensure_account` gets a
  `binder` that asks root to sign this account's public key with the HMAC key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from acme import client as acme_client_lib
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.json_util import field as json_field
from josepy.jwa import ES256, ES384, RS256
from josepy.jwk import JWKEC, JWKRSA

from .acme_ari import RenewalWindow, parse_renewal_info
from .acme_problems import PatientNetwork, Problem, parse_retry_after, translated, utcnow
from .challenges import ChallengeSolver
from .errors import AcmeError, ChallengeFailed
from .keys import generate_private_key, load_private_key, make_csr, split_fullchain, to_idna

# Kept under their old names: tests and callers patch and catch these.
_PatientNetwork = PatientNetwork
_Problem = Problem
__all__ = ["AcmeAccount", "AcmeSession", "IssuedCertificate", "connect", "parse_retry_after"]

ACCOUNT_KEY_TYPE = "ecdsa:p-256"
DEFAULT_USER_AGENT = "letsencrypt-cpanel"
# Polls back off from 20 ms: a nearby CA validates and signs in a few ms (bench/: a 50 ms first
# wait was 100 ms of every issue); a distant one costs two more POST-as-GETs than from 50 ms.
_FIRST_POLL, _MAX_POLL = 0.02, 2.0

# (account public JWK as JSON object, newAccount URL) -> the EAB JWS as a JSON object.
Binder = Callable[[Mapping[str, Any], str], Mapping[str, Any]]


@dataclass(frozen=True)
class AcmeAccount:
    """An account at one CA: the directory it belongs to, its key (PEM) and its URL."""

    directory_url: str
    key_pem: str = field(repr=False)
    url: str


@dataclass(frozen=True)
class IssuedCertificate:
    """What an order produced: leaf + chain (PEM), the order's URL, and the other chains the
    CA offered (full chains, leaf first; RFC 8555 §7.4.2 `Link: rel="alternate"`)."""

    fullchain_pem: str
    cert_pem: str
    chain_pem: str
    order_url: str
    alternate_fullchains: tuple[str, ...] = ()


class _NewOrder(messages.NewOrder):
    """newOrder with RFC 9773 §5's `replaces` (the library's has no such field)."""

    replaces: str | None = json_field("replaces", omitempty=True)


def _jwk(key_pem: str) -> tuple[Any, Any]:
    """(JWK, JWS alg) for an account key: ES256/ES384 for P-256/P-384, RS256 for RSA."""
    key = load_private_key(key_pem)
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), RS256
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return JWKEC(key=key), ES384
    return JWKEC(key=key), ES256


def connect(
    directory_url: str,
    *,
    ca_bundle: str | None = None,
    account: AcmeAccount | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    timeout: int = 45,
) -> AcmeSession:
    """Fetch the directory (RFC 8555 §7.1.1) once and return a session. `ca_bundle`: a PEM file
    to trust instead of the system store; `timeout`: seconds per connection and per read.
    Raises AcmeError when the CA cannot be reached."""
    net = PatientNetwork(verify_ssl=ca_bundle or True, user_agent=user_agent, timeout=timeout)  # type: ignore[arg-type]
    with translated():
        directory = acme_client_lib.ClientV2.get_directory(directory_url, net)
    return AcmeSession(directory_url, directory, net, account)


class AcmeSession:
    """One conversation with one CA. Build it with `connect`. Not thread-safe."""

    def __init__(
        self, directory_url: str, directory: Any, net: PatientNetwork, account: AcmeAccount | None
    ) -> None:
        self.directory_url = directory_url
        self._directory = directory
        self._net = net
        self._client = acme_client_lib.ClientV2(directory, net)
        self._jwk: Any = None
        self.account = account
        self.account_checked = False  # ensure_account ran in this session

    # --- what the directory offers ---------------------------------------------------------

    def _field(self, name: str) -> Any:
        try:
            return self._directory[name]
        except KeyError:
            return None

    @property
    def external_account_required(self) -> bool:
        meta = self._field("meta")
        return bool(getattr(meta, "external_account_required", False))

    @property
    def profiles(self) -> dict[str, str]:
        """Profiles the CA offers (`meta.profiles`, draft-aaron-acme-profiles): name -> text."""
        meta = self._field("meta")
        found = getattr(meta, "profiles", None)
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else {}

    @property
    def offers_renewal_info(self) -> bool:
        return isinstance(self._field("renewalInfo"), str)

    # --- account -----------------------------------------------------------------------------

    def _use_key(self, key_pem: str) -> None:
        self._jwk, self._net.alg = _jwk(key_pem)
        self._net.key = self._jwk
        self._net.account = None

    def _use_account(self, account: AcmeAccount) -> AcmeAccount:
        self._net.account = messages.RegistrationResource(
            body=messages.Registration(), uri=account.url
        )
        self.account = account
        self.account_checked = True
        return account

    def ensure_account(self, email: str | None = None, binder: Binder | None = None) -> AcmeAccount:
        """The session's account, checked with the CA (onlyReturnExisting, RFC 8555 §7.3.1).

        Registered anew when there is none, or the CA no longer knows it (a restarted test
        CA): with the same key if the CA merely forgot it, with a fresh ECDSA P-256 key if the
        account was deactivated or the key is unusable. A CA that requires External Account
        Binding (§7.3.4) gets one from `binder`; without a binder that is an AcmeError of kind
        `externalAccountRequired`. Callers save the result if it changed.
        """
        key_pem = ""
        if self.account is not None and self.account.directory_url == self.directory_url:
            key_pem = self.account.key_pem
            self._use_key(key_pem)
            query = messages.NewRegistration(only_return_existing=True)
            try:
                with translated():
                    resp = self._post(self._directory["newAccount"], query)
                url = resp.headers.get("Location") or self.account.url
                if resp.json().get("status", "valid") == "valid":
                    return self._use_account(replace(self.account, url=url))
                key_pem = ""  # deactivated: that key cannot register again
            except AcmeError as exc:
                if exc.kind not in ("accountDoesNotExist", "externalAccountRequired"):
                    raise
        if not key_pem:
            key_pem = generate_private_key(ACCOUNT_KEY_TYPE)
            self._use_key(key_pem)
        binding: dict[str, Any] | None = None
        if self.external_account_required and binder is not None:
            public = self._jwk.public_key().to_partial_json()
            binding = dict(binder(public, self._directory["newAccount"]))
        registration = messages.NewRegistration.from_data(
            email=email or None, terms_of_service_agreed=True, external_account_binding=binding
        )
        with translated():
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
            retry_after = parse_retry_after(resp.headers.get("Retry-After"), "", utcnow())
            if retry_after is not None:
                wait = max(0.0, (retry_after - utcnow()).total_seconds())
            if time.monotonic() + wait > deadline:
                raise AcmeError(
                    f"The certificate authority did not finish {what} in time. "
                    "Try again in a few minutes.",
                    kind="timeout",
                )
            time.sleep(wait)
            delay = min(delay * 2, _MAX_POLL)

    # --- order ---------------------------------------------------------------------------------

    def _new_order(self, names: Sequence[str], csr_pem: bytes, profile: str, replaces: str) -> Any:
        """newOrder (RFC 8555 §7.4) with `profile` and `replaces` (RFC 9773 §5) when given. A CA
        that refuses the `replaces` (already replaced, or unknown to it) gets the order without."""
        identifiers = [
            messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=to_idna(n)) for n in names
        ]
        body = _NewOrder(
            identifiers=identifiers, profile=profile or None, replaces=replaces or None
        )
        try:
            resp = self._post(self._directory["newOrder"], body)
        except Problem as problem:
            if not replaces or problem.error.code not in ("alreadyReplaced", "malformed"):
                raise
            resp = self._post(self._directory["newOrder"], body.update(replaces=None))
        order = messages.Order.from_json(resp.json())
        authorizations = [
            messages.AuthorizationResource(
                body=messages.Authorization.from_json(self._post(url).json()), uri=url
            )
            for url in order.authorizations
        ]
        return messages.OrderResource(
            body=order,
            uri=resp.headers.get("Location"),
            authorizations=authorizations,
            csr_pem=csr_pem,
        )

    def obtain_certificate(
        self,
        key_pem: str,
        names: Sequence[str],
        solver: ChallengeSolver,
        *,
        deadline: float,
        progress: Callable[[str], None] | None = None,
        replaces: str = "",
        profile: str = "",
        alternates: bool = False,
    ) -> IssuedCertificate:
        """Order, validate, finalize and download a certificate for `names` (RFC 8555 §7.4).

        `deadline`: seconds this may take from now (`Settings.order_deadline`). Every
        challenge is presented, then `solver.check`ed (a `SelfCheckFailed` is raised before
        any challenge is answered), then answered. Whatever was presented is cleaned up, also
        on failure. `replaces`: the ARI id of the certificate this one renews (RFC 9773 §5);
        `profile`: a profile the directory lists; `alternates`: also download the other
        chains the CA offers. Raises AcmeError (RateLimited, ChallengeFailed, SelfCheckFailed...).
        """
        step = progress or (lambda _text: None)
        end = time.monotonic() + deadline
        if self._net.account is None or self.account is None:
            self.ensure_account()
        csr_pem = make_csr(key_pem, list(names))
        step("order")
        with translated(names):
            order = self._new_order(names, csr_pem, profile, replaces)
        todo = self._pick_challenges(order, solver)
        presented: list[tuple[str, str]] = []
        try:
            for domain, challb, key_auth in todo:
                token = challb.chall.encode("token")
                solver.present(domain, token, key_auth)
                presented.append((domain, token))
            for domain, challb, key_auth in todo:
                solver.check(domain, challb.chall.encode("token"), key_auth)
            with translated(names):
                for domain, challb, _key_auth in todo:
                    step(f"validating {domain}")
                    self._client.answer_challenge(challb, challb.chall.response(self._jwk))
                self._await_authorizations(order, end)
        finally:
            for domain, token in presented:
                solver.cleanup(domain, token)
        with translated(names):
            return self._finalize(order, csr_pem, end, step, alternates)

    def _await_authorizations(self, order: Any, end: float) -> None:
        """Wait for the CA's validations by polling the order, which turns `ready` once every
        authorization is valid (RFC 8555 §7.1.6): one request a round, not one per name. Only
        when it is not ready are the authorizations read, for the CA's reason."""
        pending = [a for a in order.authorizations if a.body.status != messages.STATUS_VALID]
        if not pending:
            return
        body = self._poll(order.uri, end, ("pending",), "validating")
        if body.get("status") in ("ready", "processing", "valid"):
            return
        # The failed one first (an invalid order's other authorizations may stay pending).
        bodies = [messages.Authorization.from_json(self._post(a.uri).json()) for a in pending]
        for authz in sorted(bodies, key=lambda a: a.status != messages.STATUS_INVALID):
            if authz.status != messages.STATUS_PENDING:
                self._raise_if_invalid(authz)
        raise AcmeError(
            f"The certificate authority says the order is {body.get('status')}. Try again.",
            kind="order",
        )

    def _finalize(
        self, order: Any, csr_pem: bytes, end: float, step: Callable[[str], None], alternates: bool
    ) -> IssuedCertificate:
        step("finalizing")
        csr = x509.load_pem_x509_csr(csr_pem)
        resp = self._post(order.body.finalize, messages.CertificateRequest(csr=csr))
        body = resp.json()
        if body.get("status") != "valid":
            body = self._poll(order.uri, end, ("processing",), "issuing")
        final = messages.Order.from_json(body)
        if final.status != messages.STATUS_VALID or not final.certificate:
            err = final.error
            raise Problem(err, None) if err else AcmeError("The order failed.", kind="order")
        step("downloading")
        download = self._post(final.certificate)
        others: list[str] = []
        if alternates:
            links = requests.utils.parse_header_links(download.headers.get("Link", ""))
            urls = [link["url"] for link in links if link.get("rel") == "alternate"]
            others = [self._post(url).text for url in urls[:10]]
        leaf, chain = split_fullchain(download.text)
        return IssuedCertificate(download.text, leaf, chain, str(order.uri), tuple(others))

    def _pick_challenges(self, order: Any, solver: ChallengeSolver) -> list[tuple[str, Any, str]]:
        """(domain, challenge, key authorization) per authorization still to be done. For a
        wildcard the identifier is the base name (RFC 8555 §7.1.3) and only dns-01 is offered."""
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
                shown = f"*.{domain}" if authz.wildcard else domain
                raise AcmeError(
                    f"{shown}: the CA offers {', '.join(offered) or 'no challenge'}, "
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
                raise Problem(error, None)
        raise ChallengeFailed(authz.identifier.value, f"the authorization is {authz.status}")

    # --- after issuance ----------------------------------------------------------------------

    def renewal_window(self, cert_id: str, now: float) -> RenewalWindow | None:
        """The CA's suggested renewal window for a certificate (RFC 9773 §4.2, an unsigned GET
        of `renewalInfo/<cert_id>`); None when the directory offers no renewalInfo. Raises
        AcmeError when the CA does not answer or answers something that is not a window."""
        base = self._field("renewalInfo")
        if not isinstance(base, str):
            return None
        with translated():
            resp = self._net.get(f"{base.rstrip('/')}/{cert_id}", content_type="application/json")
        when = parse_retry_after(resp.headers.get("Retry-After"), "", utcnow())
        wait = None if when is None else (when - utcnow()).total_seconds()
        try:
            return parse_renewal_info(resp.json(), wait, now)
        except ValueError as exc:
            raise AcmeError(
                f"The certificate authority's renewal information is not usable: {exc}",
                kind="renewalInfo",
                detail=str(exc),
            ) from exc

    def revoke(self, cert_pem: str, reason: int = 0) -> None:
        """Revoke a certificate of this account (RFC 8555 §7.6). Raises AcmeError."""
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        if self._net.account is None:
            self.ensure_account()
        with translated():
            self._client.revoke(cert, reason)
