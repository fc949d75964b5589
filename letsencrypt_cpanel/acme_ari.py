"""ACME Renewal Information (ARI, RFC 9773): when the CA wants a certificate renewed.

Pure logic, no network (`acme_client.AcmeSession.renewal_window` fetches). Where the directory
offers `renewalInfo`, the CA suggests a window per certificate (RFC 9773 §4.2); the client picks
one moment uniformly inside it (§4.2: spreads the load) and renews from then on. A window in the
past means "now" (e.g. the CA is about to revoke); a window moved out delays a renewal the
lifetime rule alone would have started. The chosen moment is remembered in the certificate's
record (`extras["ari"]`) so every check does not draw a new one, and is drawn again only when
the CA moves the window. `Retry-After` on the answer says when to ask again (§4.3.3).
"""

from __future__ import annotations

import base64
import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

# RFC 9773 §4.3.3: without Retry-After, ask again in about six hours; never wait longer than a day.
DEFAULT_RECHECK_SECONDS = 6 * 3600
MAX_RECHECK_SECONDS = 24 * 3600
RECORD_KEY = "ari"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def ari_cert_id(cert_pem: str) -> str:
    """The certificate's ARI identifier (RFC 9773 §4.1): base64url of the Authority Key
    Identifier's keyIdentifier, ".", base64url of the serial's DER INTEGER content octets.
    Raises ValueError when the certificate has no usable AKI."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound as exc:
        raise ValueError("the certificate has no Authority Key Identifier") from exc
    if not aki.key_identifier:
        raise ValueError("the certificate's Authority Key Identifier has no key identifier")
    serial = cert.serial_number
    # A DER INTEGER is signed: one more bit for the sign, so a high first bit gets a 0x00.
    octets = serial.to_bytes((serial.bit_length() + 8) // 8 or 1, "big", signed=True)
    return f"{_b64url(aki.key_identifier)}.{_b64url(octets)}"


@dataclass(frozen=True)
class RenewalWindow:
    """The CA's suggested window (Unix times) and when to ask again."""

    start: float
    end: float
    recheck_at: float
    explanation_url: str = ""


def _rfc3339(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError("a window bound is not a date")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def parse_renewal_info(body: Any, retry_after_seconds: float | None, now: float) -> RenewalWindow:
    """The window from a renewalInfo answer (RFC 9773 §4.2). Raises ValueError when it is not
    one: missing bounds, or `end` before `start` (§4.2: such a window is invalid)."""
    if not isinstance(body, Mapping):
        raise ValueError("the renewal information is not a JSON object")
    window = body.get("suggestedWindow")
    if not isinstance(window, Mapping):
        raise ValueError("the renewal information has no suggestedWindow")
    start, end = _rfc3339(window.get("start")), _rfc3339(window.get("end"))
    if end < start:
        raise ValueError("the suggested window ends before it starts")
    wait = DEFAULT_RECHECK_SECONDS if retry_after_seconds is None else retry_after_seconds
    wait = min(max(wait, 0.0), MAX_RECHECK_SECONDS)
    url = body.get("explanationURL")
    return RenewalWindow(start, end, now + wait, url if isinstance(url, str) else "")


def remember_window(
    extras: dict[str, Any], window: RenewalWindow, rng: random.Random | None = None
) -> int:
    """Store the window in a certificate's `extras` and return the moment chosen inside it,
    keeping the earlier choice while the CA keeps the same window."""
    previous = extras.get(RECORD_KEY)
    same = (
        isinstance(previous, dict)
        and previous.get("start") == int(window.start)
        and previous.get("end") == int(window.end)
        and isinstance(previous.get("chosen"), int)
    )
    if same and isinstance(previous, dict):
        chosen = int(previous["chosen"])
    else:
        chosen = int((rng or random.SystemRandom()).uniform(window.start, window.end))
    extras[RECORD_KEY] = {
        "start": int(window.start),
        "end": int(window.end),
        "chosen": chosen,
        "recheck_at": int(window.recheck_at),
        "explanation_url": window.explanation_url,
    }
    return chosen


def remembered_recheck(extras: Mapping[str, Any]) -> int | None:
    """When the window stored by `remember_window` is to be asked about again, if stored."""
    saved = extras.get(RECORD_KEY)
    recheck = saved.get("recheck_at") if isinstance(saved, dict) else None
    return recheck if isinstance(recheck, int) else None


def remembered_choice(extras: Mapping[str, Any], now: float) -> int | None:
    """The chosen renewal moment stored by `remember_window`, while it needs no refresh
    (before `recheck_at`); None when the CA must be asked again."""
    saved = extras.get(RECORD_KEY)
    if not isinstance(saved, dict):
        return None
    chosen, recheck = saved.get("chosen"), saved.get("recheck_at")
    if not isinstance(chosen, int) or not isinstance(recheck, int) or now >= recheck:
        return None
    return chosen
