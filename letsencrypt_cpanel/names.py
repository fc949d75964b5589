"""Domain names as users type them, checked before anything is sent anywhere.

A name is refused here, with the reason, before cPanel or the CA sees it: the CA counts failed
validations against the account, and cPanel's own errors are worse to read. Names go on the wire
in their ASCII (punycode) form; users may type them in Unicode.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable, Sequence

from .errors import NameRefused

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _to_ascii(name: str) -> str:
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise NameRefused(name, "is not a valid internationalised domain name") from exc


def normalize_name(raw: str, *, allow_wildcard: bool = False) -> str:
    """Return the name in lowercase ASCII (punycode) form, or raise NameRefused saying why.

    Refused: empty, spaces or control characters, `/` or `..`, IP addresses, over 253
    characters, labels over 63 or empty, wildcards unless allowed (http-01 cannot prove them).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise NameRefused("", "an empty name was given")
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp") for ch in raw):
        raise NameRefused(shown, "contains spaces or control characters")
    if "/" in raw or "\\" in raw or ".." in raw:
        raise NameRefused(shown, "is not a domain name (it contains '/' or '..')")
    name = raw.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise NameRefused(shown, "is an IP address; certificates here are for domain names")
    wildcard = name.startswith("*.")
    if "*" in (name[2:] if wildcard else name):
        raise NameRefused(shown, "has a '*' that is not a leading wildcard label")
    if wildcard and not allow_wildcard:
        raise NameRefused(shown, "is a wildcard, which needs DNS validation")
    base = name[2:] if wildcard else name
    if not base.isascii():
        base = _to_ascii(unicodedata.normalize("NFC", base))
    labels = base.split(".")
    if len(labels) < 2:
        raise NameRefused(shown, "is not a fully qualified domain name")
    for label in labels:
        if not label:
            raise NameRefused(shown, "has an empty label")
        if len(label) > MAX_LABEL_LENGTH:
            raise NameRefused(shown, f"has a label longer than {MAX_LABEL_LENGTH} characters")
        if not _LABEL.match(label):
            raise NameRefused(shown, f"has an invalid label {label!r}")
    ascii_name = ("*." if wildcard else "") + base
    if len(ascii_name) > MAX_NAME_LENGTH:
        raise NameRefused(shown, f"is longer than {MAX_NAME_LENGTH} characters")
    return ascii_name


def normalize_names(
    raw_names: Iterable[str], *, limit: int = 100, allow_wildcard: bool = False
) -> list[str]:
    """Normalize, drop duplicates (first order kept), and enforce the per-certificate limit."""
    seen: dict[str, None] = {}
    for raw in raw_names:
        seen.setdefault(normalize_name(raw, allow_wildcard=allow_wildcard), None)
    if not seen:
        raise NameRefused("", "no names were given")
    if len(seen) > limit:
        raise NameRefused("", f"{len(seen)} names were given; a certificate holds at most {limit}")
    return list(seen)


def display_name(ascii_name: str) -> str:
    """The Unicode form of a punycode name, for people; the ASCII form if it cannot be decoded."""
    try:
        return ascii_name.encode("ascii").decode("idna")
    except UnicodeError:
        return ascii_name


def order_names(names: Sequence[str], primary: str) -> list[str]:
    """The vhost's own name first (it becomes the certificate's common name), then its
    wildcard and `www.`, then the rest."""
    return sorted(
        names, key=lambda n: (n != primary, n != f"*.{primary}", n != f"www.{primary}", n)
    )


def is_wildcard(name: str) -> bool:
    return name.startswith("*.")


def wildcard_base(name: str) -> str:
    """`example.com` for `*.example.com`; any other name unchanged."""
    return name[2:] if is_wildcard(name) else name


def drop_covered_names(names: Sequence[str]) -> list[str]:
    """The names without those a wildcard of the same list already covers (`www.example.com`
    next to `*.example.com`; a wildcard covers exactly one label, RFC 6125 §6.4.3). The CA
    refuses an order with such redundant names. The base name itself is not covered."""
    wildcards = {wildcard_base(n) for n in names if is_wildcard(n)}
    return [n for n in names if is_wildcard(n) or n.split(".", 1)[-1] not in wildcards]


_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[a-z0-9-]+(\.[a-z0-9-]+)+$", re.IGNORECASE)


def usable_email(raw: str | None) -> str | None:
    """The address if it can go to a CA as a contact, else None. cPanel reports accounts
    without one as `*unknown*` (and some hold several, comma-separated: the first is used)."""
    if not raw:
        return None
    first = raw.split(",")[0].strip()
    return first if _EMAIL.match(first) else None
