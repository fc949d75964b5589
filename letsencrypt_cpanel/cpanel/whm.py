"""`WhmAPI`: the WHM API 1 calls the plugin makes as root, one method per call.

The transport has already checked `metadata.result`; methods read `data`, which is absent for
functions that return nothing (cpanel-api.md §1.5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import CpanelAPIError
from . import parsing
from .envelope import WhmTransport
from .models import Account, AutosslProvider, DomainInfo, ServiceCert, SslVhost, UserSession
from .quirks import as_dict, as_int, as_list, as_str

# The listaccts fields `parsing.account` reads: the rest (~30 per account) is never sent.
ACCOUNT_FIELDS = "user,domain,email,owner,suspended,uid,plan,ip"


class WhmAPI:
    """Root's WHM API 1 over any `WhmTransport`."""

    def __init__(self, transport: WhmTransport) -> None:
        self.transport = transport

    def _data(self, func: str, args: dict[str, str | Sequence[str]]) -> dict[str, Any]:
        return as_dict(self.transport.call_whm(func, args).get("data"))

    def _listing(
        self, func: str, args: dict[str, str | Sequence[str]], hook: Callable[[dict[str, Any]], Any]
    ) -> dict[str, Any]:
        """`data` of a listing whose entries `hook` turns into models as the JSON is read, when
        the transport can (`call_whm_parsed`): a whole server's entries are never all dicts at
        once (the daemon's peak memory, bench/). Other transports give dicts to parse after."""
        parsed_call = getattr(self.transport, "call_whm_parsed", None)
        if parsed_call is None:
            return self._data(func, args)
        return as_dict(parsed_call(func, args, hook).get("data"))

    def listaccts(self) -> list[Account]:
        """Every account, with only the fields `Account` keeps (`want`, cpanel-api.md §3
        listaccts). WHM answers an empty server with result 0, "No accounts found." (same
        section): that is an empty list here."""
        try:
            data = self._listing("listaccts", {"want": ACCOUNT_FIELDS}, _account_hook)
        except CpanelAPIError as exc:
            if any("no accounts found" in r.lower() for r in exc.reasons):
                return []
            raise
        return [
            o if isinstance(o, Account) else parsing.account(o)
            for o in as_list(data.get("acct"))
            if isinstance(o, dict | Account)
        ]

    def accountsummary(self, user: str) -> Account:
        """One account; an unknown user raises `CpanelAPIError` ("Account does not exist.")."""
        accounts = [o for o in as_list(self._data("accountsummary", {"user": user}).get("acct"))]
        for obj in accounts:
            if isinstance(obj, dict):
                return parsing.account(obj)
        raise CpanelAPIError("", "accountsummary", ["Account does not exist."], transport="whm")

    def create_user_session(self, user: str, service: str = "cpaneld") -> UserSession:
        """A login session for `user` (create_user_session, cpanel-api.md §3): its URL holds the
        session secret; the result's repr never shows it."""
        data = self._data("create_user_session", {"user": user, "service": service})
        token = as_str(data.get("cp_security_token"))
        if token and not token.startswith("/"):
            token = "/" + token  # documented with its leading slash (cpanel-api.md §5)
        return UserSession(
            user=user,
            service=as_str(data.get("service")) or service,
            url=as_str(data.get("url")),
            cp_security_token=token,
            session=as_str(data.get("session")),
            expires=as_int(data.get("expires")),
        )

    def fetch_ssl_vhosts(self) -> list[SslVhost]:
        """Every SSL vhost on the server with its certificate (cpanel-api.md §3); each becomes
        its `SslVhost` as the JSON is read (`_listing`)."""
        data = self._listing("fetch_ssl_vhosts", {}, _ssl_vhost_hook)
        return [
            o if isinstance(o, SslVhost) else parsing.ssl_vhost(o)
            for o in as_list(data.get("vhosts"))
            if isinstance(o, dict | SslVhost)
        ]

    def fetch_service_ssl_components(self) -> list[ServiceCert]:
        """The service certificates (cpanel, exim, dovecot, ftp); keys are dropped."""
        data = self._data("fetch_service_ssl_components", {})
        return [
            parsing.service_cert(o) for o in as_list(data.get("services")) if isinstance(o, dict)
        ]

    def install_service_ssl_certificate(
        self, service: str, crt: str, key: str, cabundle: str = ""
    ) -> ServiceCert:
        """Install a service certificate (cpanel-api.md §3); cPanel restarts the service."""
        args: dict[str, str | Sequence[str]] = {"service": service, "crt": crt, "key": key}
        if cabundle:
            args["cabundle"] = cabundle
        data = self._data("install_service_ssl_certificate", args)
        return parsing.service_cert({"service": service, **data})

    def get_domain_info(self) -> list[DomainInfo]:
        """Every domain on the server with its user, type and docroot (cpanel-api.md §3)."""
        data = self._data("get_domain_info", {})
        return [parsing.domain_info(o) for o in as_list(data.get("domains")) if isinstance(o, dict)]

    def get_autossl_providers(self) -> list[AutosslProvider]:
        """cPanel's own AutoSSL providers; one `enabled` means cPanel's AutoSSL is on
        (cpanel-api.md §3: the list is `data.payload`)."""
        data = self._data("get_autossl_providers", {})
        return [
            parsing.autossl_provider(o) for o in as_list(data.get("payload")) if isinstance(o, dict)
        ]

    def add_autossl_user_excluded_domains(self, user: str, domains: Sequence[str]) -> None:
        """Keep cPanel's AutoSSL off these domains of `user` (WHM API 1
        add_autossl_user_excluded_domains, api.docs.cpanel.net: `username`, `domain` repeated).
        Not in cpanel-api.md: from cPanel's published WHM API documentation."""
        self.transport.call_whm(
            "add_autossl_user_excluded_domains", {"username": user, "domain": list(domains)}
        )

    def gethostname(self) -> str:
        return as_str(self._data("gethostname", {}).get("hostname"))

    def api_token_create(self, name: str) -> str:
        """A new WHM API token named `name` (prior-art §1.1: `api_token_create token_name=`);
        returns the token, which the caller must store as a secret."""
        data = self._data("api_token_create", {"token_name": name})
        token = as_str(data.get("token"))
        if not token:
            raise CpanelAPIError("", "api_token_create", ["no token in the answer"])
        return token


def _account_hook(obj: dict[str, Any]) -> Any:
    """json.loads' object_hook for listaccts: an `acct[]` entry (the only objects with a `user`)
    becomes its `Account` at once."""
    return parsing.account(obj) if "user" in obj else obj


def _ssl_vhost_hook(obj: dict[str, Any]) -> Any:
    """json.loads' object_hook for fetch_ssl_vhosts: a vhost (its `crt` already read) becomes
    its model at once; anything else stays as it is."""
    if "servername" in obj and "crt" in obj:
        return parsing.ssl_vhost(obj)
    return obj
