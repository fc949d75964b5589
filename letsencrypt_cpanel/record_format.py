"""The user's record as data: what `~/.cpanel/nvdata/letsencrypt-cpanel` holds, and its JSON.

One JSON object with a `version` field (ARCHITECTURE.md, "Data: the user's record"):

    {"version": 1,
     "accounts": {"<ACME directory URL>": {"directory", "key_pem", "url", "email"}},
     "certificates": {"<vhost>": {"vhost", "names", "key_pem", "key_type", "cert_pem", ...}},
     "disable_mail": false, "last_renewal_check": 0, ...anything else, kept verbatim}

Reading is strict about types (a record we half-understand must never be half-saved back):
anything that does not fit raises `UnreadableRecord`, and the store moves the file aside. Fields
we do not know are kept verbatim in `extras` and written back, so an older version of this code
never drops what a newer one added to an entry. A record without `version` is FleetSSL's format
(prior-art.md §4.7) and is converted by `fleetssl_record`.

This module does no I/O. The repr of anything holding a private key never shows the key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TypeAlias

from .errors import RecordError

# The same recursive alias as impersonate.JSONValue (kept local so the record does not depend on
# the worker machinery).
JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
JSONObject = dict[str, JSONValue]

RECORD_VERSION = 1

STATE_ISSUED = "issued"
STATE_INSTALLED = "installed"
STATE_REPLACED = "replaced"


class UnreadableRecord(RecordError):
    """The record's bytes are not a record this code can read (not JSON, wrong shape or types).

    The store reacts by moving the file aside; callers outside the store never see this one.
    """


@dataclass
class AcmeAccountEntry:
    """One ACME account of the user, filed under the CA's directory URL."""

    directory: str
    key_pem: str = field(default="", repr=False)
    # "" = not registered yet (or unknown, e.g. after a FleetSSL upgrade): look up or register.
    url: str = ""
    email: str = ""
    extras: JSONObject = field(default_factory=dict, repr=False)


@dataclass
class CertificateEntry:
    """The plugin's certificate for one virtual host (`vhost` = the vhost's domain)."""

    vhost: str
    names: list[str] = field(default_factory=list)
    key_pem: str = field(default="", repr=False)
    key_type: str = ""
    cert_pem: str = ""  # the leaf alone
    chain_pem: str = ""  # the issuers, leaf excluded
    not_before: int = 0  # Unix time
    not_after: int = 0
    challenge_method: str = "http-01"
    order_url: str = ""
    directory: str = ""
    # STATE_ISSUED -> STATE_INSTALLED, or STATE_REPLACED when another certificate sits on the vhost.
    state: str = STATE_ISSUED
    cert_id: str = ""  # cPanel's ids in the user's SSL storage
    key_id: str = ""
    issued_at: int = 0
    last_attempt: int = 0
    failures: int = 0
    last_error: str = ""
    preferred_chain: str = ""  # "" = the CA's default chain
    # Issuer CN of the chain's top -> that chain's PEM (kept from FleetSSL; the CA's alternates).
    alternate_chains: dict[str, str] = field(default_factory=dict, repr=False)
    extras: JSONObject = field(default_factory=dict, repr=False)


@dataclass
class Record:
    """Everything the plugin keeps for one user."""

    version: int = RECORD_VERSION
    accounts: dict[str, AcmeAccountEntry] = field(default_factory=dict)
    certificates: dict[str, CertificateEntry] = field(default_factory=dict)
    disable_mail: bool = False
    last_renewal_check: int = 0
    # Top-level fields this code does not use (e.g. FleetSSL's `cert_reuses`), written back as-is.
    extras: JSONObject = field(default_factory=dict, repr=False)
    # Where the data came from when it was not this format ("fleetssl"); never written.
    upgraded_from: str = field(default="", compare=False)

    def to_json(self) -> str:
        """The record as the JSON text the store writes (always the current version)."""
        data: JSONObject = dict(self.extras)
        data.update(
            {
                "version": RECORD_VERSION,
                "accounts": {url: _account_to_json(a) for url, a in self.accounts.items()},
                "certificates": {
                    vhost: _certificate_to_json(vhost, c) for vhost, c in self.certificates.items()
                },
                "disable_mail": self.disable_mail,
                "last_renewal_check": self.last_renewal_check,
            }
        )
        return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Record:
        """Parse a record in this format or FleetSSL's (also double-encoded as a JSON string).

        Empty text is a fresh record. Raises `UnreadableRecord` when the text is not a record,
        and `RecordError` when it was written by a newer version of this plugin (kept untouched:
        moving it aside would lose the newer data on a downgrade).
        """
        obj = decode_record_object(text)
        if obj is None:
            return cls()
        if "version" not in obj:
            # Imported here: fleetssl_record builds on this module's classes.
            from .fleetssl_record import upgrade_fleetssl_record

            return upgrade_fleetssl_record(obj)
        return record_from_object(obj)


def decode_record_object(text: str | bytes) -> JSONObject | None:
    """The record's JSON object, unwrapping one level of string encoding; None if empty."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnreadableRecord("the record is not UTF-8 text") from exc
    if not text.strip():
        return None
    value = _loads(text)
    # FleetSSL wrote through NVData; a `NAME=<json string>` round trip can leave the object
    # encoded as a JSON string holding the JSON text.
    if isinstance(value, str):
        value = _loads(value)
    if not isinstance(value, dict):
        raise UnreadableRecord("the record is not a JSON object")
    return value


def _loads(text: str) -> JSONValue:
    try:
        value: JSONValue = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise UnreadableRecord("the record is not valid JSON") from exc
    return value


def _refuse_constant(name: str) -> JSONValue:
    raise ValueError(f"{name} is not JSON")


def record_from_object(obj: JSONObject) -> Record:
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UnreadableRecord("the record's version is not a positive number")
    if version > RECORD_VERSION:
        raise RecordError(
            f"The certificate record was written by a newer version of the plugin (format "
            f"{version}; this one reads up to {RECORD_VERSION}). Upgrade the plugin."
        )
    known = {"version", "accounts", "certificates", "disable_mail", "last_renewal_check"}
    accounts = {
        url: _account_from_json(url, value)
        for url, value in as_object(obj.get("accounts", {}), "accounts").items()
    }
    certificates = {
        vhost: _certificate_from_json(vhost, value)
        for vhost, value in as_object(obj.get("certificates", {}), "certificates").items()
    }
    return Record(
        version=RECORD_VERSION,
        accounts=accounts,
        certificates=certificates,
        disable_mail=as_bool(obj.get("disable_mail", False), "disable_mail"),
        last_renewal_check=as_int(obj.get("last_renewal_check", 0), "last_renewal_check"),
        extras={k: v for k, v in obj.items() if k not in known},
    )


_ACCOUNT_STR_FIELDS = ("key_pem", "url", "email")
_CERT_STR_FIELDS = (
    "key_pem",
    "key_type",
    "cert_pem",
    "chain_pem",
    "challenge_method",
    "order_url",
    "directory",
    "state",
    "cert_id",
    "key_id",
    "last_error",
    "preferred_chain",
)
_CERT_INT_FIELDS = ("not_before", "not_after", "issued_at", "last_attempt", "failures")


def _account_from_json(url: str, value: JSONValue) -> AcmeAccountEntry:
    obj = as_object(value, f"account {url}")
    strs = {
        name: as_str(obj.get(name, ""), f"account {url}: {name}") for name in _ACCOUNT_STR_FIELDS
    }
    known = {"directory", *_ACCOUNT_STR_FIELDS}
    # The map key is the directory; the copy inside is informative only.
    return AcmeAccountEntry(
        directory=url, **strs, extras={k: v for k, v in obj.items() if k not in known}
    )


def _account_to_json(account: AcmeAccountEntry) -> JSONObject:
    data: JSONObject = dict(account.extras)
    data.update(
        directory=account.directory, key_pem=account.key_pem, url=account.url, email=account.email
    )
    return data


def _certificate_from_json(vhost: str, value: JSONValue) -> CertificateEntry:
    where = f"certificate {vhost}"
    obj = as_object(value, where)
    strs = {n: as_str(obj[n], f"{where}: {n}") for n in _CERT_STR_FIELDS if n in obj}
    ints = {n: as_int(obj[n], f"{where}: {n}") for n in _CERT_INT_FIELDS if n in obj}
    names = [as_str(n, f"{where}: names") for n in as_list(obj.get("names", []), f"{where}: names")]
    chains = {
        cn: as_str(pem, f"{where}: alternate_chains")
        for cn, pem in as_object(
            obj.get("alternate_chains", {}), f"{where}: alternate_chains"
        ).items()
    }
    known = {"vhost", "names", "alternate_chains", *_CERT_STR_FIELDS, *_CERT_INT_FIELDS}
    entry = CertificateEntry(
        vhost=vhost,
        names=names,
        alternate_chains=chains,
        extras={k: v for k, v in obj.items() if k not in known},
    )
    for name, field_value in [*strs.items(), *ints.items()]:
        setattr(entry, name, field_value)
    return entry


def _certificate_to_json(vhost: str, cert: CertificateEntry) -> JSONObject:
    data: JSONObject = dict(cert.extras)
    data.update({name: getattr(cert, name) for name in (*_CERT_STR_FIELDS, *_CERT_INT_FIELDS)})
    data.update(
        vhost=vhost,
        names=list[JSONValue](cert.names),
        alternate_chains=dict[str, JSONValue](cert.alternate_chains),
    )
    return data


# Type checks, shared with fleetssl_record: each raises UnreadableRecord naming the field.


def as_object(value: JSONValue, where: str) -> JSONObject:
    if not isinstance(value, dict):
        raise UnreadableRecord(f"{where} is not a JSON object")
    return value


def as_list(value: JSONValue, where: str) -> list[JSONValue]:
    if not isinstance(value, list):
        raise UnreadableRecord(f"{where} is not a list")
    return value


def as_str(value: JSONValue, where: str) -> str:
    if not isinstance(value, str):
        raise UnreadableRecord(f"{where} is not text")
    return value


def as_bool(value: JSONValue, where: str) -> bool:
    if not isinstance(value, bool):
        raise UnreadableRecord(f"{where} is not true or false")
    return value


def as_int(value: JSONValue, where: str) -> int:
    # Unix times may arrive as floats; a bool is never a number here.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnreadableRecord(f"{where} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnreadableRecord(f"{where} is not a finite number")
    return int(value)
