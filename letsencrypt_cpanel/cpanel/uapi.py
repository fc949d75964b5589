"""`UserAPI`: the UAPI calls the plugin makes as one cPanel user, one method per call.

The transport (LiveAPI socket, HTTPS user session, command line) has already checked the envelope;
methods here only read `data`. Errors: `CpanelAPIError` when cPanel refused,
`CpanelTransportError` when no well-formed answer came.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from . import parsing
from .envelope import UapiCallFailed, UapiTransport
from .models import (
    DomainList,
    InstalledHost,
    InstallResult,
    NewRecord,
    StoredCert,
    StoredKey,
    Vhost,
    ZoneLine,
)
from .quirks import (
    as_dict,
    as_int,
    as_list,
    as_str,
    as_str_list,
    domain_objects,
    install_reported_cert_id,
    is_unknown_error,
    main_domain_name,
    main_domain_object,
    same_certificate,
)


class UserAPI:
    """One cPanel user's API over any `UapiTransport`."""

    def __init__(self, transport: UapiTransport) -> None:
        self.transport = transport

    def _data(self, module: str, func: str, args: dict[str, str | Sequence[str]]) -> Any:
        return self.transport.call_uapi(module, func, args).get("data")

    # --- domains -----------------------------------------------------------------------------

    def domains_data(self) -> list[Vhost]:
        """Every web vhost of the user: main first, then addons, then subdomains
        (DomainInfo::domains_data format=hash, cpanel-api.md §2). Parked domains are not vhosts:
        they appear in the main vhost's `names`."""
        data = as_dict(self._data("DomainInfo", "domains_data", {"format": "hash"}))
        vhosts: list[Vhost] = []
        main = main_domain_object(data.get("main_domain"))
        if main is not None:
            vhosts.append(parsing.vhost(main, "main"))
        vhosts += [parsing.vhost(o, "addon") for o in domain_objects(data.get("addon_domains"))]
        vhosts += [parsing.vhost(o, "sub") for o in domain_objects(data.get("sub_domains"))]
        return vhosts

    def single_domain_data(self, domain: str) -> Vhost:
        """One vhost by domain (not a parked domain) (DomainInfo::single_domain_data)."""
        data = self._data("DomainInfo", "single_domain_data", {"domain": domain})
        return parsing.vhost(as_dict(data))

    def list_domains(self) -> DomainList:
        """The account's domain names by kind (DomainInfo::list_domains; `main_domain` may be a
        string or a list, cpanel-api.md §0)."""
        data = as_dict(self._data("DomainInfo", "list_domains", {}))
        return DomainList(
            main_domain=main_domain_name(data.get("main_domain")).lower(),
            addon_domains=tuple(d.lower() for d in as_str_list(data.get("addon_domains"))),
            parked_domains=tuple(d.lower() for d in as_str_list(data.get("parked_domains"))),
            sub_domains=tuple(d.lower() for d in as_str_list(data.get("sub_domains"))),
        )

    # --- installed certificates ----------------------------------------------------------------

    def installed_hosts(self) -> list[InstalledHost]:
        """Every SSL vhost of the user and its certificate (SSL::installed_hosts). cPanel may
        report errors next to a usable list; cpanelgo accepts non-empty data then
        (cpanel-api.md §2 installed_hosts), and so do we."""
        try:
            data = self._data("SSL", "installed_hosts", {})
        except UapiCallFailed as exc:
            if not as_list(exc.data):
                raise
            data = exc.data
        return [parsing.installed_host(o) for o in as_list(data) if isinstance(o, dict)]

    def install_ssl(
        self, domain: str, cert_pem: str, key_pem: str, cabundle_pem: str = ""
    ) -> InstallResult:
        """Install a certificate on the vhost of `domain` (SSL::install_ssl; the PEMs travel in
        a POST body, never a URL or argv).

        cPanel can answer "unknown error" although it installed (cpanel-api.md §1.6): that counts
        as success when `data.cert_id` is present, or when `installed_hosts` now shows this very
        certificate on the vhost; otherwise the original `CpanelAPIError` is raised.
        """
        args: dict[str, str | Sequence[str]] = {
            "domain": domain,
            "cert": cert_pem,
            "key": key_pem,
        }
        if cabundle_pem:
            args["cabundle"] = cabundle_pem
        try:
            data = as_dict(self._data("SSL", "install_ssl", args))
        except UapiCallFailed as exc:
            if not is_unknown_error(exc.reasons):
                raise
            if install_reported_cert_id(exc.data):
                return _install_result(as_dict(exc.data), domain, recovered=True)
            host = self._installed_host_with(domain, cert_pem)
            if host is None:
                raise
            return InstallResult(
                cert_id=host.certificate.id,
                key_id="",
                domain=domain,
                message="; ".join(exc.reasons),
                working_domains=host.domains,
                recovered=True,
            )
        return _install_result(data, domain, recovered=False)

    def _installed_host_with(self, domain: str, cert_pem: str) -> InstalledHost | None:
        wanted = domain.lower().removeprefix("www.")  # install_ssl strips `www.` (§2)
        for host in self.installed_hosts():
            on_vhost = wanted == host.servername or wanted in host.domains
            if on_vhost and same_certificate(host.certificate_pem, cert_pem):
                return host
        return None

    def delete_ssl(self, domain: str) -> None:
        """Remove the SSL vhost of `domain`; stored certificates stay (SSL::delete_ssl)."""
        self._data("SSL", "delete_ssl", {"domain": domain})

    # --- SSL storage -------------------------------------------------------------------------

    def list_certs(self) -> list[StoredCert]:
        return [
            parsing.stored_cert(o)
            for o in as_list(self._data("SSL", "list_certs", {}))
            if isinstance(o, dict)
        ]

    def list_keys(self) -> list[StoredKey]:
        return [
            parsing.stored_key(o)
            for o in as_list(self._data("SSL", "list_keys", {}))
            if isinstance(o, dict)
        ]

    def delete_cert(self, cert_id: str) -> None:
        """Delete a stored certificate; nothing matching is not an error (cpanel-api.md §2)."""
        self._data("SSL", "delete_cert", {"id": cert_id})

    def delete_key(self, key_id: str) -> None:
        self._data("SSL", "delete_key", {"id": key_id})

    # --- account -----------------------------------------------------------------------------

    def has_feature(self, name: str) -> bool:
        """Whether the user has feature `name` (Features::has_feature). cPanel answers "no" with
        `status` 0 and no error, and "no such feature" with `status` null (cpanel-api.md §2 and
        the schema's examples); both are False. A real error still raises."""
        try:
            self._data("Features", "has_feature", {"name": name})
        except UapiCallFailed as exc:
            if exc.errors:
                raise
            return False
        return True

    def get_user_information(self, *names: str) -> dict[str, Any]:
        """Variables::get_user_information for `names` (all when none), as cPanel sent it."""
        args: dict[str, str | Sequence[str]] = {"name": list(names)} if names else {}
        return as_dict(self._data("Variables", "get_user_information", args))

    # --- DNS (dns-01) ------------------------------------------------------------------------

    def parse_zone(self, zone: str) -> list[ZoneLine]:
        """The lines of a zone the user controls (DNS::parse_zone); `models.soa_serial` gives
        the serial `mass_edit_zone` needs."""
        data = self._data("DNS", "parse_zone", {"zone": zone})
        return [parsing.zone_line(o) for o in as_list(data) if isinstance(o, dict)]

    def mass_edit_zone(
        self,
        zone: str,
        serial: int,
        add: Sequence[NewRecord] = (),
        remove: Sequence[int] = (),
    ) -> int:
        """Add and remove records in one change, returning the new serial (DNS::mass_edit_zone,
        cpanel-api.md §2: each `add` is a JSON string, each `remove` a line index; a stale serial
        fails)."""
        args: dict[str, str | Sequence[str]] = {"zone": zone, "serial": str(serial)}
        if add:
            args["add"] = [
                json.dumps(
                    {
                        "dname": r.dname,
                        "ttl": r.ttl,
                        "record_type": r.record_type,
                        "data": list(r.data),
                    }
                )
                for r in add
            ]
        if remove:
            args["remove"] = [str(i) for i in remove]
        data = as_dict(self._data("DNS", "mass_edit_zone", args))
        return as_int(data.get("new_serial"))


def _install_result(data: dict[str, Any], domain: str, *, recovered: bool) -> InstallResult:
    return InstallResult(
        cert_id=as_str(data.get("cert_id")),
        key_id=as_str(data.get("key_id")),
        domain=as_str(data.get("domain")) or domain,
        message=as_str(data.get("message")) or as_str(data.get("statusmsg")),
        working_domains=tuple(as_str_list(data.get("working_domains"))),
        warning_domains=tuple(as_str_list(data.get("warning_domains"))),
        action=as_str(data.get("action")),
        recovered=recovered,
    )
