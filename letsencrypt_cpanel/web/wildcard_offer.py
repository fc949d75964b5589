"""Which names of a website the Issue form offers a Wildcard for.

A wildcard can only be validated with dns-01 (RFC 8555 §7.1.3), and the plugin answers dns-01
only in the user's own cPanel zones: so `*.name` is offered only where this account has the zone
that holds `name`, found exactly as the dns-01 solver finds it (`dns_zones.find_zone`,
walking up the labels with `DNS::parse_zone`). Never for a `www.` name: `*.www.example.com` is
not what anyone means, and `*.example.com` already covers `www.example.com`.

The lookup asks cPanel once per candidate zone, whatever the number of names that share it, and
only when the Issue form is shown (Home never pays for it). When cPanel does not answer, no
wildcard is offered and the form says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cpanel.models import ZoneLine
from ..cpanel.uapi import UserAPI
from ..errors import CpanelAPIError, CpanelTransportError, Error


@dataclass(frozen=True)
class WildcardOffer:
    """`names`: the names whose `*.name` the form offers; `problem`: why none could be checked
    ("" when the lookup worked)."""

    names: frozenset[str] = frozenset()
    problem: str = ""


class _ZonesAskedOnce(UserAPI):
    """The user's API with `parse_zone` remembered per zone, answer or refusal alike, so names
    that share a zone (and the parents `find_zone` tries) cost one call each."""

    def __init__(self, api: UserAPI) -> None:
        super().__init__(api.transport)
        self._seen: dict[str, list[ZoneLine] | CpanelAPIError] = {}

    def parse_zone(self, zone: str) -> list[ZoneLine]:
        if zone not in self._seen:
            try:
                self._seen[zone] = super().parse_zone(zone)
            except CpanelTransportError:
                raise  # no answer at all: not a fact about the zone, never remembered
            except CpanelAPIError as exc:
                self._seen[zone] = exc
        found = self._seen[zone]
        if isinstance(found, CpanelAPIError):
            raise found
        return found


def is_www(name: str) -> bool:
    return name.lower().startswith("www.")


def wildcard_offer(api: UserAPI, names: Sequence[str]) -> WildcardOffer:
    """The names of `names` whose wildcard can be validated here. Never raises."""
    from ..dns_zones import find_zone  # here: only this form asks for zones, never Home

    asked = _ZonesAskedOnce(api)
    offered: set[str] = set()
    try:
        for name in names:
            if not is_www(name) and find_zone(asked, name) is not None:
                offered.add(name)
    except Error as exc:
        return WildcardOffer(
            problem=(
                "Wildcards cannot be offered right now: cPanel did not say which DNS zones this "
                f"account has ({exc}). Reload the page to try again; if it keeps happening, "
                "tell your hosting provider."
            )
        )
    return WildcardOffer(frozenset(offered))
