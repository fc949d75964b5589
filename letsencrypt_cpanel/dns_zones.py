"""Which of the user's cPanel DNS zones holds a name (`DNS::parse_zone`, walking up the labels).

Apart from dns_challenge.py so that the cPanel page's Issue form (which offers a wildcard only
where the zone is here) can ask without loading the dns-01 solver's cryptography and dnspython.
"""

from __future__ import annotations

from .cpanel.models import ZoneLine
from .cpanel.uapi import UserAPI
from .errors import CpanelAPIError, CpanelTransportError


def find_zone(api: UserAPI, domain: str) -> tuple[str, list[ZoneLine]] | None:
    """The user's zone that holds `domain` and its lines, or None when no zone on this server
    does (the domain's DNS is elsewhere). Walks up the labels: a.b.example.com, b.example.com,
    example.com (never a bare top-level domain). Raises CpanelTransportError when cPanel does
    not answer at all."""
    labels = domain.lower().rstrip(".").removeprefix("*.").split(".")
    for start in range(len(labels) - 1):
        zone = ".".join(labels[start:])
        try:
            return zone, api.parse_zone(zone)
        except CpanelTransportError:
            raise
        except CpanelAPIError:
            continue  # "You do not control a DNS zone named ...": try the parent
    return None
