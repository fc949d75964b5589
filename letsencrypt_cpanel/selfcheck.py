"""Our own http-01 check, run before the challenge is answered (RFC 8555 §8.3).

The CA resolves the name and fetches `http://<name>/.well-known/acme-challenge/<token>` from
outside; Let's Encrypt tries the AAAA address first. A broken `.htaccess`, a stale AAAA record
or a proxy in front makes that fail, and every failure spends the CA's failed-validation limit.
So the plugin looks first, the same way, at EVERY address the name resolves to, and says what
it saw. Redirects are followed the way Let's Encrypt follows them (to http on port 80 or https
on port 443, at most 10, any certificate accepted on https), because a site that forces HTTPS
still validates; where a redirect leads somewhere that does not serve the token, the message
names the chain, since that is exactly what the person must check.

The key authorization is only compared, never sent, logged or put in a message.
"""

from __future__ import annotations

import http.client
import ipaddress
import ssl
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.nameserver
import dns.resolver

from .errors import SelfCheckFailed

USER_AGENT = "letsencrypt-cpanel-selfcheck"
_MAX_BODY = 8192
_SNIPPET = 60
_MAX_REDIRECTS = 10  # what Let's Encrypt's VA allows


def parse_resolver(spec: str) -> tuple[str, int]:
    """("ip", port) of "ip", "ip:port", "[v6]:port" or a bare IPv6. Raises ValueError."""
    spec = spec.strip()
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    else:
        host, port = spec, 53
    ipaddress.ip_address(host)  # resolvers are addresses, never names
    if not 0 < port < 65536:
        raise ValueError(f"bad port in resolver {spec!r}")
    return host, port


@dataclass(frozen=True)
class FetchResult:
    """What one address served for the token URL."""

    address: str
    status: int
    location: str
    body: bytes


@dataclass(frozen=True)
class SelfCheck:
    """Checks that a name serves a token at every address it resolves to.

    `resolvers`: "ip" or "ip:port" strings (empty = the system's resolv.conf); `http_port`: the
    port the CA would use (80 on a real server); `timeout`: per DNS query and per connection.
    Constructing it does no I/O.
    """

    resolvers: Sequence[str] = ()
    http_port: int = 80
    timeout: float = 5.0
    # Where a redirect to https:// lands (443 on a real server; the CA follows those too).
    https_port: int = 443
    # What each name resolved to, for this check's short life: AutoSSL's plan asks for a name's
    # addresses and then verifies it, and dnspython's answers cost CPU a whole server feels.
    _found: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)

    def _resolver(self) -> dns.resolver.Resolver:
        if not self.resolvers:
            resolver = dns.resolver.Resolver()
        else:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_resolver(spec)) for spec in self.resolvers
            ]
        resolver.lifetime = self.timeout
        resolver.timeout = self.timeout
        return resolver

    def addresses(self, domain: str) -> list[str]:
        """AAAA then A addresses of `domain` (the CA's order). Raises SelfCheckFailed when the
        name has none, does not exist, or DNS cannot be asked."""
        known = self._found.get(domain)
        if known is not None:
            return list(known)
        resolver = self._resolver()
        found: list[str] = []
        for rdtype in ("AAAA", "A"):
            try:
                answer = resolver.resolve(domain, rdtype, search=False)
            except dns.resolver.NXDOMAIN as exc:
                raise SelfCheckFailed(
                    domain,
                    "the name does not exist in DNS (NXDOMAIN). Create an A record pointing at "
                    "this server, or wait until a new domain's DNS has propagated.",
                ) from exc
            except dns.resolver.NoAnswer:
                continue
            except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
                raise SelfCheckFailed(
                    domain,
                    f"the {rdtype} lookup failed ({exc.__class__.__name__}): the name's DNS "
                    "servers do not answer properly. Check the domain's nameservers.",
                ) from exc
            found.extend(rr.to_text() for rr in answer)
        if not found:
            raise SelfCheckFailed(
                domain,
                "the name has no A or AAAA record, so nothing can reach it. "
                "Point its A record at this server.",
            )
        self._found[domain] = found
        return list(found)

    def fetch(self, domain: str, address: str, path: str, *, tls: bool = False) -> FetchResult:
        """GET `path` from `address` with `Host: domain` (over TLS to `https_port` when `tls`);
        raises OSError on connection failure."""
        port = self.https_port if tls else self.http_port
        host = domain if port == (443 if tls else 80) else f"{domain}:{port}"
        conn: http.client.HTTPConnection
        if tls:
            # The CA accepts any certificate when it follows a redirect to https (the site may
            # not have one yet: that is why it is here); nothing secret is sent.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(address, port, timeout=self.timeout, context=context)
        else:
            conn = http.client.HTTPConnection(address, port, timeout=self.timeout)
        try:
            conn.request(
                "GET",
                path,
                headers={"Host": host, "User-Agent": USER_AGENT, "Connection": "close"},
            )
            resp = conn.getresponse()
            body = resp.read(_MAX_BODY)
            return FetchResult(address, resp.status, resp.getheader("Location") or "", body)
        finally:
            conn.close()

    def _follow(self, target: str, path: str) -> FetchResult | str:
        """Fetch a redirect's target as the CA would, or say why the CA would not follow it."""
        url = urllib.parse.urlsplit(urllib.parse.urljoin(f"http://x{path}", target))
        advice = (
            "Check .htaccess redirects and rewrite rules: /.well-known/acme-challenge/ must be "
            "served as plain files."
        )
        if url.scheme not in ("http", "https") or not url.hostname:
            return f"and the certificate authority does not follow that kind of redirect. {advice}"
        if url.port not in (None, 80, 443):
            return (
                f"and the certificate authority only follows redirects to ports 80 and 443, "
                f"not {url.port}. {advice}"
            )
        try:
            ipaddress.ip_address(url.hostname)
        except ValueError:
            pass
        else:
            return (
                "and the certificate authority does not follow redirects to an IP address. "
                + advice
            )
        try:
            address = self.addresses(url.hostname)[0]
        except SelfCheckFailed as exc:
            return f"and {url.hostname} cannot be reached: {exc.detail}"
        query = f"?{url.query}" if url.query else ""
        tls = url.scheme == "https"
        try:
            result = self.fetch(url.hostname, address, (url.path or "/") + query, tls=tls)
        except (OSError, http.client.HTTPException) as exc:
            port = self.https_port if tls else self.http_port
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            return f"and {url.hostname} cannot be fetched at {address}:{port} ({why}). {advice}"
        if result.status == 200 or 300 <= result.status < 400:
            return result
        return f"and {url.hostname} answers HTTP {result.status} there. {advice}"

    def verify(self, domain: str, token: str, key_authorization: str) -> None:
        """Raise SelfCheckFailed unless every address of `domain` serves `key_authorization`
        at `/.well-known/acme-challenge/<token>`. The detail names each failing address, what
        it served instead, and what to check."""
        path = f"/.well-known/acme-challenge/{token}"
        problems: list[str] = []
        addresses = self.addresses(domain)
        for address in addresses:
            problem = self._check_address(domain, address, path, token, key_authorization)
            if problem:
                problems.append(problem)
        if problems:
            raise SelfCheckFailed(domain, " ".join(problems))

    def _check_address(
        self, domain: str, address: str, path: str, token: str, key_authorization: str
    ) -> str:
        family = "AAAA" if ":" in address else "A"
        shown = f"[{address}]" if family == "AAAA" else address
        where = f"http://{domain}/.well-known/acme-challenge/… at {shown}:{self.http_port}"
        elsewhere = (
            f" If {address} is not this server, the {family} record points elsewhere: "
            "fix or remove it."
        )
        try:
            result = self.fetch(domain, address, path)
            hops: list[str] = []
            while 300 <= result.status < 400 and len(hops) < _MAX_REDIRECTS:
                target = result.location
                hops.append(f"{result.status} to {target.replace(token, '<token>') or '?'}")
                followed = self._follow(target, path)
                if isinstance(followed, str):
                    return f"{where}: redirects ({', then '.join(hops)}), {followed}"
                result = followed
        except ConnectionRefusedError:
            return f"{where}: connection refused, nothing listens there.{elsewhere}"
        except TimeoutError:
            return f"{where}: no answer within {self.timeout:g} s (a firewall?).{elsewhere}"
        except OSError as exc:
            return f"{where}: cannot connect ({exc.strerror or exc}).{elsewhere}"
        except http.client.HTTPException as exc:
            return f"{where}: the answer is not valid HTTP ({exc.__class__.__name__})."
        if 300 <= result.status < 400:
            return (
                f"{where}: more than {_MAX_REDIRECTS} redirects. Check .htaccess redirects and "
                "rewrite rules: /.well-known/acme-challenge/ must be served as plain files."
            )
        if hops:
            where = f"{where} (after redirects: {', then '.join(hops)})"
        if result.status != 200:
            hint = {
                403: "access is denied: check .htaccess deny rules, ModSecurity, or file modes",
                404: "the file is not found: the name may be served from another document "
                "root, or a rewrite rule catches the path",
            }.get(result.status, "check the web server's error log for this name")
            return f"{where}: HTTP {result.status}; {hint}."
        # RFC 8555 §8.3: the CA ignores trailing whitespace in the body, so we do too.
        if result.body.rstrip(b" \t\r\n") == key_authorization.encode("ascii"):
            return ""
        snippet = result.body[:_SNIPPET].decode("utf-8", "replace").replace(token, "<token>")
        snippet = "".join(c if c.isprintable() else " " for c in snippet).strip()
        return (
            f"{where}: other content was served ({len(result.body)} bytes, starting "
            f"{snippet!r}). A proxy or CDN in front, a catch-all rewrite, or another server "
            f"at this address answers instead of the site's document root.{elsewhere}"
        )
