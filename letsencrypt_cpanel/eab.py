"""External Account Binding (RFC 8555 §7.3.4), with the HMAC key kept by root alone.

Some CAs register an account only with a binding: a JWS over the new account's public JWK,
signed (HS256) with an HMAC key the CA gave the admin, `kid` naming that key. The key is the
admin's credential at the CA, so no user process may ever hold it: user-side code (the cPanel
page, a worker) asks root for the binding of its own account's public key (`RootBinder`), and
root (`root_service.py`) reads the key from its 0600 file per request and signs.

The key lives in a file of its own (`Settings.eab_key_file`), not in the secrets file: a root
process that forks workers reads the secrets file (the WHM token), and whatever is in its memory
when it forks is in every worker's memory too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import Settings
from .errors import ConfigError, Error

# RFC 7518 §6.2.1 and §6.3.1: the public members of EC and RSA keys; anything else (e.g. the
# private "d") is refused, so root never signs a binding over something that is not a public key.
_PUBLIC_MEMBERS = {"EC": {"kty", "crv", "x", "y"}, "RSA": {"kty", "n", "e"}}
_CURVES = ("P-256", "P-384", "P-521")
_MAX_MEMBER = 1024  # base64url of an RSA-4096 modulus is 683 characters


class EabUnavailable(Error):
    """The binding could not be had from root (no EAB configured, root service down, refused)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def decode_hmac_key(text: str) -> bytes:
    """The HMAC key as CAs hand it out: base64url, padding optional (also plain base64)."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        key = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("the EAB HMAC key is not base64url text") from exc
    if len(key) < 16:
        raise ConfigError("the EAB HMAC key is shorter than 16 bytes; copy it again from the CA")
    return key


def load_hmac_key(settings: Settings) -> bytes:
    """Read the HMAC key from root's file (root only). Raises ConfigError."""
    path: Path = settings.eab_key_file
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as exc:
        raise ConfigError(
            "no EAB HMAC key is set: `le-cp config set eab_hmac_key` (on standard input)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read") from exc
    return decode_hmac_key(text)


def public_jwk(candidate: Any) -> dict[str, str]:
    """The JWK if it is a plain EC or RSA public key (RFC 7517), else ValueError."""
    if not isinstance(candidate, Mapping):
        raise ValueError("the account key is not a JSON object")
    kty = candidate.get("kty")
    allowed = _PUBLIC_MEMBERS.get(kty) if isinstance(kty, str) else None
    if allowed is None or set(candidate) != allowed:
        raise ValueError("the account key is not an EC or RSA public key")
    if any(not isinstance(v, str) or not 0 < len(v) <= _MAX_MEMBER for v in candidate.values()):
        raise ValueError("the account key has a malformed member")
    if kty == "EC" and candidate["crv"] not in _CURVES:
        raise ValueError("the account key's curve is not supported")
    return {k: str(candidate[k]) for k in sorted(allowed)}


def same_origin(url: str, directory: str) -> bool:
    """Whether `url` is on the CA of `directory` (scheme, host and port)."""
    a, b = urlsplit(url), urlsplit(directory)
    return bool(a.netloc) and (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def sign_binding(
    kid: str, hmac_key: bytes, account_jwk: Mapping[str, str], url: str
) -> dict[str, str]:
    """The EAB JWS (flattened JSON, RFC 7515 §7.2.2) RFC 8555 §7.3.4 describes: protected
    header {alg HS256, kid, url of newAccount}, payload the account's public JWK."""
    header = {"alg": "HS256", "kid": kid, "url": url}
    protected = b64url(json.dumps(header, separators=(",", ":")).encode())
    payload = b64url(json.dumps(dict(account_jwk), separators=(",", ":")).encode())
    mac = hmac.new(hmac_key, f"{protected}.{payload}".encode("ascii"), hashlib.sha256)
    return {"protected": protected, "payload": payload, "signature": b64url(mac.digest())}


def binding_for(settings: Settings, account_jwk: Any, url: str) -> dict[str, str]:
    """Root's side: check the request and sign it. Raises EabUnavailable saying why."""
    directory = settings.eab_directory or settings.acme_directory
    if not settings.eab_kid:
        raise EabUnavailable("no EAB key id is set on this server (le-cp config set eab_kid)")
    if not isinstance(url, str) or not same_origin(url, directory):
        raise EabUnavailable("the binding was asked for another certificate authority")
    try:
        jwk = public_jwk(account_jwk)
    except ValueError as exc:
        raise EabUnavailable(str(exc)) from exc
    try:
        key = load_hmac_key(settings)
    except ConfigError as exc:
        raise EabUnavailable(str(exc)) from exc
    return sign_binding(settings.eab_kid, key, jwk, url)


class RootBinder:
    """User side: asks root's socket for the binding of this account's public key.

    Callable as `acme_client.Binder`. Raises EabUnavailable when root cannot be asked or says
    no. Constructing it does no I/O.
    """

    def __init__(self, socket_path: Path, timeout: float = 15.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def __call__(self, account_jwk: Mapping[str, Any], url: str) -> Mapping[str, Any]:
        # Imported here: the client side needs nothing of the server's machinery at import.
        from .root_service import RootServiceError, ask_root

        try:
            answer = ask_root(
                self.socket_path,
                {"op": "eab_binding", "jwk": dict(account_jwk), "url": url},
                timeout=self.timeout,
            )
        except RootServiceError as exc:
            raise EabUnavailable(
                f"The certificate authority requires External Account Binding, and the plugin's "
                f"root service did not sign it: {exc}"
            ) from exc
        binding = answer.get("binding")
        if not isinstance(binding, dict) or set(binding) != {"protected", "payload", "signature"}:
            raise EabUnavailable("the root service's answer holds no binding")
        return binding
