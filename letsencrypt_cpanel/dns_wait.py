"""Waiting for a dns-01 TXT record to be served (RFC 8555 §8.4), before the CA is told to look.

The CA asks the zone's authoritative servers (through its own recursive resolver, which starts
from them); answering the challenge before they all serve the value fails the validation and
spends the CA's failed-validation limit. So the plugin asks them itself: each server of
`resolvers` when the admin configured some (`Settings.resolvers`; the tests point it at
pebble-challtestsrv), else each authoritative server of the zone (its NS records, resolved by
the system's resolver, then asked directly). Only the TXT value is compared, never logged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver

from .errors import ChallengeFailed
from .selfcheck import parse_resolver

_FIRST_PAUSE, _MAX_PAUSE = 0.1, 2.0
# ChallengeFailed.kind when our own wait failed (the CA was not asked; its "dns" is another).
PROPAGATION = "dns-propagation"


@dataclass(frozen=True)
class TxtWatcher:
    """Asks DNS servers for a TXT record until all of them serve a value.

    `resolvers`: "ip" or "ip:port" (empty = the zone's authoritative servers); `timeout`: how
    long `wait_for` waits in all; `query_timeout`: per query. Constructing it does no I/O.
    """

    resolvers: Sequence[str] = ()
    timeout: float = 120.0
    query_timeout: float = 3.0

    def servers_for(self, zone: str) -> list[tuple[str, int]]:
        """(address, port) of every server to ask about names in `zone`. Raises
        ChallengeFailed(kind="dns") when the zone's nameservers cannot be found."""
        if self.resolvers:
            return [parse_resolver(spec) for spec in self.resolvers]
        resolver = dns.resolver.Resolver()
        resolver.lifetime = self.query_timeout
        servers: list[tuple[str, int]] = []
        try:
            for ns in resolver.resolve(zone, "NS", search=False):
                host = ns.target.to_text()
                for rdtype in ("A", "AAAA"):
                    try:
                        servers += [(rr.to_text(), 53) for rr in resolver.resolve(host, rdtype)]
                    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                        continue
        except dns.exception.DNSException as exc:
            raise ChallengeFailed(
                zone,
                f"the nameservers of the zone {zone} cannot be found ({exc.__class__.__name__}). "
                "Check that the domain is delegated to this server's nameservers.",
                kind=PROPAGATION,
            ) from exc
        if not servers:
            raise ChallengeFailed(
                zone, f"the zone {zone} has no reachable nameserver", kind=PROPAGATION
            )
        return servers

    def delegated_here(self, zone: str, local_nameservers: set[str]) -> bool:
        """Whether the zone's public delegation names one of the nameservers the local zone
        lists (cPanel keeps a zone for every domain, also when its DNS is hosted elsewhere).
        With `resolvers` configured this cannot be told: True, and the wait decides."""
        if self.resolvers:
            return True
        resolver = dns.resolver.Resolver()
        resolver.lifetime = self.query_timeout
        try:
            public = {
                ns.target.to_text().rstrip(".").lower()
                for ns in resolver.resolve(zone, "NS", search=False)
            }
        except dns.exception.DNSException:
            return False
        return bool(public & {n.rstrip(".").lower() for n in local_nameservers})

    def txt_values(self, server: tuple[str, int], name: str) -> set[str]:
        """The TXT values one server serves for `name` (strings of a record joined, §8.4)."""
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        address, port = server
        response = dns.query.udp(query, address, port=port, timeout=self.query_timeout)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(query, address, port=port, timeout=self.query_timeout)
        values: set[str] = set()
        for rrset in response.answer:
            if rrset.rdtype != dns.rdatatype.TXT:
                continue
            for rdata in rrset:
                values.add(b"".join(rdata.strings).decode("ascii", "replace"))
        return values

    def wait_for(self, name: str, value: str, zone: str) -> None:
        """Return once every server serves `value` at `name`; raise ChallengeFailed(kind="dns")
        after `timeout` seconds, naming the servers that still do not."""
        servers = self.servers_for(zone)
        end = time.monotonic() + self.timeout
        pause = _FIRST_PAUSE
        while True:
            missing = []
            for server in servers:
                try:
                    if value in self.txt_values(server, name):
                        continue
                except (dns.exception.DNSException, OSError):
                    pass
                missing.append(f"{server[0]}:{server[1]}" if server[1] != 53 else server[0])
            if not missing:
                return
            if time.monotonic() + pause > end:
                raise ChallengeFailed(
                    name.removeprefix("_acme-challenge."),
                    f"the TXT record {name} was not served by {', '.join(missing)} within "
                    f"{self.timeout:g} s. Check that the zone {zone} on this server is the one "
                    "the domain's nameservers serve.",
                    kind=PROPAGATION,
                )
            time.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)
