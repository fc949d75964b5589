"""The options the WHM page shows and changes: which settings, how they read, how a form (or a
JSON body) becomes validated changes, and telling the daemon to reread them.

Every value goes through `config.validate_change`: the rules live there alone, so `le-cp config
set` and this page accept and refuse the same values. Secrets (the SMTP password, the EAB HMAC
key) are write-only: the page says whether one is set, never what it is; an empty field keeps
the stored one, and a "clear" box removes it. Nothing is saved unless every field is valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import (
    KEY_TYPES,
    LETSENCRYPT_PRODUCTION,
    LETSENCRYPT_STAGING,
    SECRET_KEYS,
    Settings,
    load_secrets,
    public_items,
    set_value,
    validate_change,
)
from ..daemon_signal import reread_settings
from ..errors import ConfigError

DIRECTORIES = {"production": LETSENCRYPT_PRODUCTION, "staging": LETSENCRYPT_STAGING}


@dataclass(frozen=True)
class Option:
    key: str
    label: str
    kind: str  # directory, bool, choice, number, text, list, secret
    group: str
    help: str = ""
    choices: tuple[str, ...] = ()


OPTIONS = (
    Option("acme_directory", "ACME directory", "directory", "Certificate authority",
           "Let's Encrypt, its staging service (untrusted test certificates), or any RFC 8555 "
           "certificate authority's directory URL."),
    Option("eab_kid", "External account binding: key ID", "text", "Certificate authority",
           "Only for a CA that asks for EAB; leave empty for Let's Encrypt."),
    Option("eab_hmac_key", "External account binding: HMAC key", "secret", "Certificate authority"),
    Option("renewal_days", "Renew when fewer days than this are left", "number", "Renewal",
           "0 = when less than the fraction below of the certificate's lifetime is left."),
    Option("renewal_fraction", "Renew when less than this part of the lifetime is left",
           "number", "Renewal", "Between 0 and 1; 0.333 is 30 days of a 90-day certificate."),
    Option("default_key_type", "Default key type", "choice", "Renewal",
           "For new certificates, AutoSSL and the service certificate.", KEY_TYPES),
    Option("autossl_enabled", "AutoSSL: secure every website without a valid certificate",
           "bool", "AutoSSL"),
    Option("autossl_exclude", "AutoSSL never requests these names", "list", "AutoSSL",
           "Patterns, one per line, e.g. *.staging.example.com"),
    Option("autossl_proxy_subdomains",
           "Include cPanel's proxy subdomains (cpanel., webmail., ...) that resolve here",
           "bool", "AutoSSL"),
    Option("cpanel_autossl_exclude_managed",
           "Keep cPanel's own AutoSSL off the websites this plugin manages", "bool", "AutoSSL"),
    Option("send_success_mail", "Mail the account's contact when a certificate renews", "bool",
           "Mail"),
    Option("send_failure_mail", "Mail the account's contact when a renewal fails", "bool",
           "Mail"),
    Option("mail_from", "Sender address", "text", "Mail",
           "Empty = letsencrypt-cpanel@ this server's hostname."),
    Option("admin_email", "Administrator's address", "text", "Mail",
           "Empty = root@ this server's hostname."),
    Option("smtp_host", "SMTP server", "text", "Mail", "Empty = the local mail system."),
    Option("smtp_port", "SMTP port", "number", "Mail"),
    Option("smtp_user", "SMTP user name", "text", "Mail"),
    Option("smtp_starttls", "Use STARTTLS", "bool", "Mail"),
    Option("smtp_password", "SMTP password", "secret", "Mail"),
    Option("hostcert_enabled", "Issue and renew the service certificate", "bool",
           "Service certificate"),
    Option("hostcert_extra_names", "Extra names on the service certificate", "list",
           "Service certificate", "One per line, besides the server's hostname."),
)  # fmt: skip


def available(settings: Settings) -> list[Option]:
    """The options this version's settings know (the list above may name newer ones)."""
    known = public_items(settings)
    return [o for o in OPTIONS if o.key in known or o.key in SECRET_KEYS]


def current_values(settings: Settings) -> dict[str, Any]:
    """What the form shows: public values as they are, secrets only as set / not set."""
    items = public_items(settings)
    secrets = load_secrets(settings)
    out: dict[str, Any] = {}
    for option in available(settings):
        if option.kind == "secret":
            out[option.key] = bool(getattr(secrets, option.key, ""))
        else:
            value = items[option.key]
            out[option.key] = list(value) if isinstance(value, tuple) else value
    return out


def directory_choice(url: str) -> str:
    return next((k for k, v in DIRECTORIES.items() if v == url), "custom")


Getter = Callable[[str], "str | None"]


def _submitted(option: Option, get: Getter, whole_form: bool) -> str | None:
    """The raw value given for `option`, None when it was not given (leave it alone)."""
    raw = get(option.key)
    if option.kind == "bool" and whole_form:
        # An unticked checkbox sends nothing: on the page's own form, absence means off.
        return "true" if raw not in (None, "", "0", "false", "off") else "false"
    if option.kind == "directory":
        choice = get("acme_directory_choice") or ""
        if choice in DIRECTORIES:
            return DIRECTORIES[choice]
        if raw in DIRECTORIES:
            return DIRECTORIES[str(raw)]
    if option.kind == "list" and raw is not None:
        return ",".join(p.strip() for p in re.split(r"[\n,]", raw) if p.strip())
    return raw


def parse_changes(
    settings: Settings, get: Getter, *, whole_form: bool
) -> tuple[dict[str, str], list[str]]:
    """(changes to save, errors). `get(name)` reads one submitted value (None = absent);
    `whole_form`: the page's own form (unticked boxes mean off) rather than a JSON body that
    names only what it changes."""
    current = public_items(settings)
    changes: dict[str, str] = {}
    errors: list[str] = []
    for option in available(settings):
        if option.kind == "secret":
            if (get(f"clear_{option.key}") or "") in ("1", "true", "on"):
                changes[option.key] = ""
            elif get(option.key):
                changes[option.key] = str(get(option.key)).strip()
            continue
        raw = _submitted(option, get, whole_form)
        if raw is None:
            continue
        try:
            value = validate_change(option.key, raw.strip())
        except ConfigError as exc:
            errors.append(f"{option.label}: {exc}")
            continue
        if value != current.get(option.key):
            changes[option.key] = raw.strip()
    return changes, errors


def save_changes(settings: Settings, changes: dict[str, str]) -> None:
    """Persist validated changes: secrets to the 0600 secrets file, the rest to the config."""
    for key, value in changes.items():
        set_value(settings, key, value)


def tell_daemon(settings: Settings) -> int | None:
    """SIGHUP to the running daemon so it rereads the config now; its pid, or None when it is
    not running (it reads the config when it starts)."""
    return reread_settings(settings).pid
