"""What cPanel changes on disk when a user parks a domain, removes it, or removes an addon domain
(reference/cpanel-api.md §4: the userdata `main` file and vhost files, /etc/userdatadomains,
/etc/userdomains, the cPanel user file, the zone; an SSL vhost goes with its domain), done to a
sandbox root the way `add-user` lays an account out.

The sandbox has no call for these yet (API2 `Park::park`, WHM `create_parked_domain_for_user`,
`AddonDomain::deladdondomain`): the tests change the files instead, as cPanel would.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from cpanel_sandbox import accounts, layout, zones


def _gid(root: Path, user: str) -> int:
    entry = accounts.passwd_entry(root, user)
    assert entry is not None, user
    return entry.gid


def _write_yaml(root: Path, user: str, name: str, data: Any) -> None:
    path = layout.userdata_dir(root, user) / name
    layout.write_file(path, layout.dump_yaml(data), mode=0o640, gid=_gid(root, user))


def _main_vhost(root: Path, user: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    main = accounts.main_data(root, user)
    main_domain = str(main["main_domain"])
    return main, main_domain, accounts.vhost_data(root, user, main_domain) or {}


def _edit_domain_maps(root: Path, user: str, remove: set[str], rows: list[str]) -> None:
    """Drop `remove` from /etc/userdatadomains and /etc/userdomains; add `rows` to the former
    (and their names, as `user`'s, to the latter)."""
    path = layout.userdatadomains_file(root)
    kept = [
        line
        for line in layout.read_text(path).splitlines()
        if line and line.split(":", 1)[0] not in remove
    ]
    layout.write_file(path, "".join(f"{line}\n" for line in [*kept, *rows]), mode=0o640)
    owners = layout.read_colon_map(layout.userdomains_file(root))
    owners.pop("*", None)
    for name in remove:
        owners.pop(name, None)
    for row in rows:
        owners[row.split(":", 1)[0]] = user
    text = layout.format_colon_map(owners) + "*: nobody\n"
    layout.write_file(layout.userdomains_file(root), text)


def _edit_cpuser_domains(root: Path, user: str, remove: set[str], add: list[str]) -> None:
    """The cPanel user file's DNS, DNS1, DNS2... lines: `remove` dropped, `add` appended."""
    path = layout.cpuser_file(root, user)
    lines = layout.read_text(path).splitlines()

    def is_dns(line: str) -> bool:
        key = line.split("=", 1)[0]
        return "=" in line and key.startswith("DNS") and (key == "DNS" or key[3:].isdigit())

    domains = [line.split("=", 1)[1] for line in lines if is_dns(line)]
    domains = [d for d in domains if d not in remove] + add
    dns = [f"DNS={domains[0]}"] + [f"DNS{i}={d}" for i, d in enumerate(domains[1:], 1)]
    header = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if not line.startswith("#") and not is_dns(line)]
    text = "\n".join([*header, *dns, *body]) + "\n"
    layout.write_file(path, text, mode=0o640, gid=_gid(root, user))


def park(root: Path, user: str, domain: str) -> None:
    """Park `domain` on `user`'s main domain: it and its `www.` and `mail.` names join the main
    vhost's aliases, and it gets a zone."""
    main, main_domain, vhost = _main_vhost(root, user)
    main["parked_domains"] = [*(main.get("parked_domains") or []), domain]
    _write_yaml(root, user, "main", main)
    aliases = str(vhost.get("serveralias") or "").split()
    vhost["serveralias"] = " ".join([*aliases, domain, f"mail.{domain}", f"www.{domain}"])
    _write_yaml(root, user, main_domain, vhost)
    row = next(
        line
        for line in layout.read_text(layout.userdatadomains_file(root)).splitlines()
        if line.startswith(f"{main_domain}: ")
    )
    fields = row.split(": ", 1)[1].split("==")
    fields[2] = "parked"
    _edit_domain_maps(root, user, set(), [f"{domain}: " + "==".join(fields)])
    _edit_cpuser_domains(root, user, set(), [domain])
    zones.write_new_zone(root, domain, accounts.hostname(root))


def unpark(root: Path, user: str, domain: str) -> None:
    """Remove the parked `domain`: its names leave the main vhost, its zone goes."""
    main, main_domain, vhost = _main_vhost(root, user)
    main["parked_domains"] = [p for p in main.get("parked_domains") or [] if p != domain]
    _write_yaml(root, user, "main", main)
    gone = {domain, f"mail.{domain}", f"www.{domain}"}
    vhost["serveralias"] = " ".join(
        n for n in str(vhost.get("serveralias") or "").split() if n not in gone
    )
    _write_yaml(root, user, main_domain, vhost)
    _edit_domain_maps(root, user, {domain}, [])
    _edit_cpuser_domains(root, user, {domain}, [])
    layout.zone_file(root, domain).unlink(missing_ok=True)


def remove_addon(root: Path, user: str, addon: str) -> None:
    """Remove the addon domain `addon` and its backing subdomain: its vhost, with the SSL vhost
    on it, and its zone."""
    main = accounts.main_data(root, user)
    addons = accounts.addon_map(main)
    backing = addons.pop(addon)
    main["addon_domains"] = addons
    main["sub_domains"] = [s for s in main.get("sub_domains") or [] if s != backing]
    _write_yaml(root, user, "main", main)
    folder = layout.userdata_dir(root, user)
    for name in (backing, f"{backing}_SSL"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(layout.apache_tls_dir(root, backing), ignore_errors=True)
    _edit_domain_maps(root, user, {addon, backing}, [])
    _edit_cpuser_domains(root, user, {addon, backing}, [])
    layout.zone_file(root, addon).unlink(missing_ok=True)
