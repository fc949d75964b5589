"""cPanel's known quirks, each in one named function so it is handled once and tested.

Every function here is pure: it takes decoded JSON (or text) and returns plain values. The section
of `cpanel-api.md` behind each quirk is cited next to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Response bodies are bounded (prior-art §4.6a: cpanelgo caps replies at 20 MiB + 1337 bytes).
MAX_RESPONSE_BYTES = 20 * 1024 * 1024 + 1337

# cPanel's service ("proxy") subdomains: answered by cpsrvd through Apache, never the user's site
# (cpanel-api.md §2 installed_hosts: `fqdns[]` "incl. proxy subdomains like cpanel.example.com").
PROXY_SUBDOMAIN_LABELS = frozenset(
    {
        "cpanel",
        "webmail",
        "whm",
        "webdisk",
        "cpcalendars",
        "cpcontacts",
        "autodiscover",
        "autoconfig",
    }
)


def as_int(value: Any, default: int = 0) -> int:
    """An integer that cPanel may send as a JSON number, a numeric string, or null.

    cpanel-api.md §1.6: `not_after`, `created`, `is_self_signed`, `expires` "may arrive as JSON
    strings"; §1.5: WHM `metadata.result` has been seen as "1".
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                return int(float(text))
            except ValueError:
                return default
    return default


def as_bool(value: Any) -> bool:
    """cPanel's 0/1 flags, as numbers or strings (cpanel-api.md §1.6)."""
    return as_int(value) != 0


def as_str(value: Any) -> str:
    """A string field that may be null or a number."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def as_str_list(value: Any) -> list[str]:
    """A list of strings that may be null, a single string, or hold non-strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in (as_str(x) for x in value) if v]
    return []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def main_domain_name(value: Any) -> str:
    """`main_domain` is a string in `list_domains` and an object in `domains_data`; cPanel's
    schema says an array of either (cpanel-api.md §0 and §2 DomainInfo::list_domains)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return as_str(value.get("domain")) or as_str(value.get("servername"))
    if isinstance(value, list) and value:
        return main_domain_name(value[0])
    return ""


def main_domain_object(value: Any) -> dict[str, Any] | None:
    """The main vhost object of `domains_data format=hash`: one object (running code) or a list
    holding it (the schema) (cpanel-api.md §0)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping):
                return dict(item)
    return None


def domain_objects(value: Any) -> list[dict[str, Any]]:
    """The objects of `addon_domains[]`/`sub_domains[]`, dropping the `0` cPanel puts in place of
    a subdomain whose userdata file is missing (cpanel-api.md §2 DomainInfo::domains_data)."""
    return [dict(item) for item in as_list(value) if isinstance(item, Mapping)]


def common_name(value: Any) -> str:
    """`subject.commonName` is a string, or an object `{"commonName": "..."}` (cpanel-api.md §1.6;
    the WHM `fetch_ssl_vhosts` doc even shows `crt.subject.commonName.commonName`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return common_name(value.get("commonName"))
    if isinstance(value, list) and value:
        return common_name(value[0])
    return ""


def dotted(obj: Mapping[str, Any], outer: str, inner: str) -> Any:
    """A field cPanel names `outer.inner` as one flat key, or (some versions) nests as
    `{outer: {inner: ...}}` (cpanel-api.md §2 installed_hosts, §3 fetch_ssl_vhosts)."""
    flat = f"{outer}.{inner}"
    if flat in obj:
        return obj[flat]
    nested = obj.get(outer)
    if isinstance(nested, Mapping):
        return nested.get(inner)
    return None


def is_unknown_error(reasons: Iterable[str]) -> bool:
    """`SSL::install_ssl` may fail with "unknown error" although the certificate got installed
    (cpanel-api.md §1.6; cpanelgo `cpanel/ssl.go`)."""
    return any("unknown error" in reason.lower() for reason in reasons)


def install_reported_cert_id(data: Any) -> str:
    """The `data.cert_id` that proves an `install_ssl` reported as failed did install
    (cpanel-api.md §1.6: FleetSSL treats it as success when `data.cert_id` is set)."""
    return as_str(as_dict(data).get("cert_id"))


def normalize_pem(text: str) -> str:
    """A PEM block compared by content: no surrounding blanks, no CR, one trailing newline."""
    lines = [line.strip() for line in text.replace("\r", "").strip().splitlines()]
    return "\n".join(line for line in lines if line) + "\n"


def first_pem_certificate(text: str) -> str:
    """The first `CERTIFICATE` block of a PEM text ("" if there is none)."""
    match = re.search(
        r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, flags=re.DOTALL
    )
    return normalize_pem(match.group(0)) if match else ""


def same_certificate(a: str, b: str) -> bool:
    """Whether two PEM texts start with the same certificate."""
    first = first_pem_certificate(a)
    return bool(first) and first == first_pem_certificate(b)


def is_proxy_subdomain(name: str, own_domains: Iterable[str]) -> bool:
    """A cPanel service subdomain (`cpanel.`, `webmail.`, ...) of one of the vhost's domains."""
    label, _, rest = name.partition(".")
    return label in PROXY_SUBDOMAIN_LABELS and rest in set(own_domains)


def strip_error_prefix(text: str) -> tuple[str, list[str]]:
    """Split LiveAPI reply text into the JSON and the `<error>...</error>` warnings cPanel may put
    before it (prior-art §4.6a: "A reply may carry an `<error>…</error>` warning before the
    JSON")."""
    warnings = [m.strip() for m in re.findall(r"<error>(.*?)</error>", text, flags=re.DOTALL)]
    rest = re.sub(r"<error>.*?</error>", "", text, flags=re.DOTALL)
    return rest.strip(), warnings
