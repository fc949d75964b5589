"""cPanel's own AutoSSL and the domain list, as WHM API 1 answers for them (cpanel-api.md §3).

- `get_autossl_providers`: the providers and which one is enabled. cPanel keeps the choice in
  /var/cpanel/autossl.json (`{"provider": "cPanel"}`; no provider = AutoSSL off). A fresh cPanel
  server runs the `cPanel` provider, so a missing file means that here too.
- `add_autossl_user_excluded_domains` / `get_autossl_user_excluded_domains`: a user's domains
  that cPanel's AutoSSL leaves alone (api.docs.cpanel.net, WHM "Disable AutoSSL for domain";
  `domain` repeats as `domain`, `domain-1`, ...). Kept per user in a JSON file of the sandbox.
- `get_domain_info`: every domain from /etc/userdatadomains; resellers see only their own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cpanel_sandbox import accounts, layout

PROVIDERS = {
    "cPanel": ("cPanel (powered by Sectigo)", ["http", "dns"], 200),
    "LetsEncrypt": ("Let’s Encrypt™", ["http", "dns"], 100),
}


def autossl_file(root: Path) -> Path:
    return layout.cpanel_var(root) / "autossl.json"


def excluded_file(root: Path, user: str) -> Path:
    return layout.cpanel_var(root) / "sandbox-autossl-excluded" / f"{user}.json"


def enabled_provider(root: Path) -> str:
    path = autossl_file(root)
    if not path.exists():
        return "cPanel"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return ""
    return str(data.get("provider") or "") if isinstance(data, dict) else ""


def set_provider(root: Path, provider: str) -> None:
    """Test helper: "" turns cPanel's AutoSSL off."""
    layout.write_file(autossl_file(root), json.dumps({"provider": provider or None}), mode=0o644)


def get_autossl_providers(root: Path, authuser: str, args: layout.Args, meta: Any) -> Any:
    current = enabled_provider(root)
    payload = []
    for name, (display, methods, max_names) in PROVIDERS.items():
        specs = {"DCV_METHODS": methods, "MAX_DOMAINS_PER_CERTIFICATE": max_names}
        specs.update(SUPPORTS_WILDCARD=1, VALIDITY_PERIOD=7776000, DELIVERY_METHOD="api")
        payload.append(
            {
                "module_name": name,
                "display_name": display,
                "enabled": 1 if name == current else 0,
                "specs": specs,
                "x_terms_of_service": "",
                "x_terms_of_service_accepted": "",
                "x_account_id": "",
            }
        )
    return {"payload": payload}


def _user_arg(root: Path, authuser: str, args: layout.Args) -> str:
    from cpanel_sandbox.whm import visible_users

    user = args.get("username") or ""
    if not user:
        raise layout.ApiError("The parameter “username” is required.")
    if user not in visible_users(root, authuser):
        raise layout.ApiError(f"The user “{user}” does not exist.")
    return user


def excluded_domains(root: Path, user: str) -> list[str]:
    try:
        data = json.loads(excluded_file(root, user).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(d) for d in data] if isinstance(data, list) else []


def add_autossl_user_excluded_domains(
    root: Path, authuser: str, args: layout.Args, meta: Any
) -> Any:
    user = _user_arg(root, authuser, args)
    wanted = [d.strip().lower() for d in args.get_multiple("domain") if d.strip()]
    if not wanted:
        raise layout.ApiError("The parameter “domain” is required.")
    owned = {d.lower() for d in accounts.all_domains(root, user)}
    foreign = [d for d in wanted if d not in owned and d.split(".", 1)[-1] not in owned]
    if foreign:
        raise layout.ApiError(f"“{user}” does not own “{foreign[0]}”.")
    merged = list(dict.fromkeys([*excluded_domains(root, user), *wanted]))
    path = excluded_file(root, user)
    path.parent.mkdir(parents=True, exist_ok=True)
    layout.write_file(path, json.dumps(merged), mode=0o600)
    return None


def get_autossl_user_excluded_domains(
    root: Path, authuser: str, args: layout.Args, meta: Any
) -> Any:
    user = _user_arg(root, authuser, args)
    return {"payload": [{"excluded_domain": d} for d in excluded_domains(root, user)]}


def get_domain_info(root: Path, authuser: str, args: layout.Args, meta: Any) -> Any:
    from cpanel_sandbox.whm import visible_users

    visible = set(visible_users(root, authuser))
    domains = []
    for line in layout.read_text(layout.userdatadomains_file(root)).splitlines():
        name, sep, rest = line.partition(": ")
        fields = rest.split("==")
        if not sep or len(fields) < 7 or fields[0] not in visible:
            continue
        ip, _, port = fields[5].partition(":")
        ssl_ip, _, ssl_port = fields[6].partition(":")
        domains.append(
            {
                "domain": name,
                "user": fields[0],
                "user_owner": fields[1],
                "domain_type": fields[2],
                "parent_domain": fields[3],
                "docroot": fields[4],
                "ipv4": ip,
                "port": port,
                "ipv4_ssl": ssl_ip,
                "port_ssl": ssl_port,
                "ipv6": None,
                "ipv6_is_dedicated": 0,
                "modsecurity_enabled": 1,
                "php_version": fields[9] if len(fields) > 9 else "",
            }
        )
    return {"domains": domains}
