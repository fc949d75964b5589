"""dns-01 through the user's own cPanel DNS zone (RFC 8555 §8.4).

The TXT record `_acme-challenge.<name>` gets base64url(SHA-256(key authorization)). The zone the
name lives in is found by asking cPanel for the name's zone, then its parent's, and so on
(`DNS::parse_zone` answers only for zones the user controls): a subdomain lives in its parent's
zone. Records are added and removed with `DNS::mass_edit_zone`, which takes the zone's current
serial and refuses a stale one (someone else edited the zone meanwhile): then the zone is read
again and the edit retried. Before the CA is told to look, `check` waits until the zone's
servers answer with the value (dns_wait.py). `cleanup` removes exactly the records `present`
added (by name and value, since line numbers move), also after a failure.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from .challenges import DNS01
from .cpanel.envelope import UapiCallFailed
from .cpanel.models import NewRecord, ZoneLine, soa_serial
from .cpanel.uapi import UserAPI
from .dns_wait import TxtWatcher
from .dns_zones import find_zone
from .errors import ChallengeFailed, CpanelAPIError

__all__ = ["CpanelDnsSolver", "find_zone", "is_stale_serial", "txt_value"]

ACME_LABEL = "_acme-challenge"
# Short, so a value left behind by a crash stops being served soon; the CA reads it at once.
TXT_TTL = 60
STALE_RETRIES = 5


def txt_value(key_authorization: str) -> str:
    """The TXT value for a key authorization (RFC 8555 §8.4): unpadded base64url SHA-256."""
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def is_stale_serial(exc: CpanelAPIError) -> bool:
    """Whether cPanel refused an edit because the serial was not the zone's current one
    (cpanel-api.md §2 mass_edit_zone: the "Stale" payload in `data`)."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and data.get("type") == "Stale":
        return True
    return any("has changed" in r or "stale" in r.lower() for r in exc.reasons)


def _owner(line: ZoneLine, zone: str) -> str:
    """A record's owner as an absolute lowercase name without the final dot."""
    name = line.name.lower()
    if name.endswith("."):
        return name.rstrip(".")
    if name in ("", "@"):
        return zone
    return f"{name}.{zone}"


@dataclass
class CpanelDnsSolver:
    """dns-01 in the user's cPanel zones. `watcher` decides when the record is served."""

    api: UserAPI
    watcher: TxtWatcher
    challenge_types: tuple[str, ...] = (DNS01,)
    _zones: dict[str, str] = field(default_factory=dict, repr=False)
    # zone -> the nameservers its own NS records name (for `served_here`).
    _nameservers: dict[str, set[str]] = field(default_factory=dict, repr=False)
    # (domain, token) -> (zone, owner name, value) of what `present` added.
    _added: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict, repr=False)
    leftovers: list[str] = field(default_factory=list)

    def zone_for(self, domain: str) -> str:
        """The zone holding `domain`; ChallengeFailed(kind="dns-zone") when it is not here."""
        key = domain.lower().removeprefix("*.")
        if key not in self._zones:
            found = find_zone(self.api, key)
            if found is None:
                raise ChallengeFailed(
                    key,
                    "no DNS zone of this cPanel account holds this name, so dns-01 cannot be "
                    "used. Its DNS is served elsewhere: use http-01, or add the TXT records "
                    "where the domain's DNS is hosted.",
                    kind="dns-zone",
                )
            zone, lines = found
            self._zones[key] = zone
            self._nameservers[zone] = {
                line.data[0]
                for line in lines
                if line.type == "record"
                and line.record_type.upper() == "NS"
                and _owner(line, zone) == zone
                and line.data
            }
        return self._zones[key]

    def served_here(self, domain: str) -> bool:
        """Whether the zone holding `domain` is on this server and is the one the world asks
        (its delegation names this zone's nameservers). Never raises."""
        try:
            zone = self.zone_for(domain)
        except ChallengeFailed:
            return False
        return self.watcher.delegated_here(zone, self._nameservers.get(zone, set()))

    def _edit(
        self, zone: str, change: Callable[[list[ZoneLine]], tuple[list[NewRecord], list[int]]]
    ) -> None:
        """Apply `change(lines) -> (add, remove)` with the zone's current serial, reading the zone
        again and retrying when cPanel says the serial went stale."""
        for attempt in range(STALE_RETRIES + 1):
            lines = self.api.parse_zone(zone)
            add, remove = change(lines)
            if not add and not remove:
                return
            try:
                self.api.mass_edit_zone(zone, soa_serial(lines), add=add, remove=remove)
                return
            except UapiCallFailed as exc:
                if not is_stale_serial(exc) or attempt == STALE_RETRIES:
                    raise

    def present(self, domain: str, token: str, key_authorization: str) -> None:
        """Add the TXT record. Raises ChallengeFailed when the name's zone is not on this
        server or cPanel refuses the edit."""
        zone = self.zone_for(domain)
        owner = f"{ACME_LABEL}.{domain.lower().removeprefix('*.')}"
        value = txt_value(key_authorization)
        relative = owner[: -len(zone) - 1]
        record = NewRecord(relative, TXT_TTL, "TXT", (value,))
        try:
            self._edit(zone, lambda _lines: ([record], []))
        except CpanelAPIError as exc:
            raise ChallengeFailed(
                domain, f"the TXT record could not be added to the zone {zone}: {exc}", kind="dns"
            ) from exc
        self._added[(domain, token)] = (zone, owner, value)

    def check(self, domain: str, token: str, key_authorization: str) -> None:
        added = self._added.get((domain, token))
        if added is not None:
            zone, owner, value = added
            self.watcher.wait_for(owner, value, zone)

    def cleanup(self, domain: str, token: str) -> None:
        """Remove the record `present` added. Never raises: a record that cannot be removed
        now is named in `leftovers` (it is harmless, and the next cleanup of that name
        removes it with its own)."""
        added = self._added.pop((domain, token), None)
        if added is None:
            return
        zone, owner, value = added

        def ours(lines: list[ZoneLine]) -> tuple[list[NewRecord], list[int]]:
            return [], [
                line.line_index
                for line in lines
                if line.type == "record"
                and line.record_type.upper() == "TXT"
                and _owner(line, zone) == owner
                and "".join(line.data) == value
            ]

        try:
            self._edit(zone, ours)
        except CpanelAPIError:
            self.leftovers.append(owner)
