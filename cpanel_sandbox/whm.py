"""WHM API 1 functions over the sandbox's cPanel files (cpanel-api.md §1.5, §3).

The envelope is S1 Whostmgr/API/1/Data/Wrapper.pm's: `metadata` {command, version, result,
reason}, and `data` only when the function returned a hash. A throw becomes `API failure: …`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cpanel_sandbox import accounts, certs, layout, sessions, sslstorage, standins, whm_autossl

TOKEN_ALPHABET = string.ascii_uppercase + string.digits
ROOT_ONLY = {"fetch_service_ssl_components", "install_service_ssl_certificate"}


class Failed(Exception):
    """result 0 with this reason (no `API failure:` prefix: the function chose the text)."""


def dispatch(
    root: Path, authuser: str, func: str, args: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The WHM API 1 envelope (metadata + data when there is data)."""
    meta: dict[str, Any] = {"command": func, "version": 1, "result": 1, "reason": "OK"}
    handler = FUNCTIONS.get(func)
    out: dict[str, Any] = {"metadata": meta}
    try:
        if handler is None:
            raise Failed(f"Unknown app (“{func}”) requested for this version (1) of the API.")
        if authuser != "root" and (func in ROOT_ONLY or authuser not in resellers(root)):
            raise Failed("Permission denied")
        data = handler(root, authuser, layout.Args(args), meta)
        if isinstance(data, dict):
            out["data"] = data
    except Failed as exc:
        meta.update(result=0, reason=str(exc))
    # A throw becomes `API failure: <text>` (S1 Whostmgr/API/1/Data/Wrapper.pm execute_internal).
    except Exception as exc:
        meta.update(result=0, reason=f"API failure: {exc}")
    return out


def _required(args: layout.Args, name: str) -> str:
    value = args.get(name)
    if not value:
        raise layout.ApiError(f"The parameter “{name}” is required.")
    return value


# ---- accounts -------------------------------------------------------------------------------


def resellers(root: Path) -> dict[str, list[str]]:
    """var/cpanel/resellers: `user:acl,acl` lines (§4)."""
    out: dict[str, list[str]] = {}
    for line in layout.read_text(layout.resellers_file(root)).splitlines():
        name, sep, acls = line.partition(":")
        if sep and name.strip():
            out[name.strip()] = [a.strip() for a in acls.split(",") if a.strip()]
    return out


def visible_users(root: Path, authuser: str) -> list[str]:
    """Accounts a WHM user may see: root and `all` resellers everything, others their own."""
    users = accounts.list_users(root)
    if authuser == "root" or "all" in resellers(root).get(authuser, []):
        return users
    return [u for u in users if accounts.cpuser(root, u).get("OWNER") == authuser]


def acct_record(root: Path, user: str) -> dict[str, Any]:
    """One listaccts/accountsummary `acct` entry (S3 field names; cPanel's strings kept)."""
    cp = accounts.cpuser(root, user)
    entry = accounts.passwd_entry(root, user)
    start = int(cp.get("STARTDATE") or 0)
    unlimited = "unlimited"
    return {
        "user": user,
        "domain": cp.get("DNS", ""),
        "email": cp.get("CONTACTEMAIL") or "*unknown*",
        "owner": cp.get("OWNER", "root"),
        "plan": cp.get("PLAN", "default"),
        "ip": cp.get("IP", layout.SANDBOX_IP),
        "ipv6": [],
        "theme": cp.get("RS", "jupiter"),
        "uid": entry.uid if entry else None,
        "partition": "home",
        "shell": entry.shell if entry else "/bin/bash",
        "suspended": 0,
        "suspendreason": "not suspended",
        "suspendtime": None,
        "startdate": time.strftime("%y %b %d %H:%M", time.gmtime(start)),
        "unix_startdate": start,
        "diskused": "0M",
        "disklimit": unlimited,
        "maxaddons": unlimited,
        "maxparked": unlimited,
        "maxsub": unlimited,
        "maxpop": unlimited,
        "maxsql": unlimited,
        "maxftp": unlimited,
        "maxlst": unlimited,
        "is_locked": 0,
        "temporary": 0,
        "backup": 0,
        "has_backup": 0,
        "mailbox_format": "maildir",
    }


def _listaccts(root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]) -> Any:
    records = [acct_record(root, u) for u in visible_users(root, authuser)]
    search, kind = args.get("search"), args.get("searchtype") or "user"
    if search:
        field = {"domain": "domain", "owner": "owner", "user": "user", "ip": "ip"}
        field["package"] = "plan"
        if kind not in field:
            raise Failed("Unknown search type.")
        if (args.get("searchmethod") or "regex") == "exact":
            records = [r for r in records if str(r[field[kind]]) == search]
        else:
            pattern = re.compile(search, re.I)
            records = [r for r in records if pattern.search(str(r[field[kind]]))]
    if not records:
        raise Failed("No accounts found.")
    want = [w for w in (args.get("want") or "").split(",") if w]
    if want:
        records = [{k: v for k, v in r.items() if k in want} for r in records]
    return {"acct": records}


def _accountsummary(root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]) -> Any:
    user, domain = args.get("user"), (args.get("domain") or "").lower()
    if not user and not domain:
        raise layout.ApiError("You must specify a user or domain to get a summary of.")
    if not user:
        user = layout.read_colon_map(layout.userdomains_file(root)).get(domain)
    if not user or user not in visible_users(root, authuser):
        raise Failed("Account does not exist.")
    return {"acct": [acct_record(root, user)]}


def _create_user_session(root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]) -> Any:
    user, service = _required(args, "user"), _required(args, "service")
    if service not in sessions.SERVICE_PORT_KEYS:
        raise layout.ApiError(f"The service “{service}” is not valid.")
    if service == "whostmgrd":
        allowed = user == authuser or (authuser == "root" and user in resellers(root))
    else:
        allowed = user in visible_users(root, authuser)
    if not allowed:
        raise layout.ApiError(f"The user “{user}” does not exist or you may not access it.")
    meta["reason"] = "Created session"
    return sessions.create(root, user, service)


# ---- SSL ------------------------------------------------------------------------------------


def _vhost_type(main: dict[str, Any], servername: str) -> str:
    if servername == main.get("main_domain"):
        return "main"
    return "addon" if servername in accounts.addon_map(main).values() else "sub"


def _fetch_ssl_vhosts(root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]) -> Any:
    vhosts: list[dict[str, Any]] = []
    for user in visible_users(root, authuser):
        main = accounts.main_data(root, user)
        for servername in sslstorage.installed_servernames(root, user):
            host = sslstorage.installed_host(root, user, servername)
            if host is None:
                continue
            crt = dict(host["certificate"])
            # §1.6: numbers may come as strings and subject.commonName as an object; send both
            # forms here so clients stay tolerant.
            crt["not_after"] = str(crt["not_after"])
            crt["is_self_signed"] = str(crt["is_self_signed"])
            crt["created"] = str(crt["not_before"])
            crt["subject.commonName"] = {"commonName": crt["subject.commonName"]}
            crt["encryption_algorithm"] = crt["key_algorithm"]
            vhosts.append(
                {
                    "servername": servername,
                    "domains": host["domains"],
                    "user": user,
                    "docroot": host["docroot"],
                    "ip": host["ip"],
                    "ipv6": None,
                    "iptype": "shared",
                    "type": _vhost_type(main, servername),
                    "is_primary_on_ip": 0,
                    "needs_sni": 1,
                    "mail_sni_status": 1,
                    "crt": crt,
                }
            )
    return {"vhosts": vhosts}


def _service_info(crt: str) -> dict[str, Any]:
    facts = certs.cert_facts(certs.load_cert(crt))
    drop = ("id", "subject.commonName", "subject_text", "serial", "is_autossl")
    return {k: v for k, v in facts.items() if k not in drop}


def _fetch_service_ssl_components(
    root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]
) -> Any:
    services = []
    for service in standins.SERVICE_FILES:
        found = standins.read_service(root, service)
        crt, key, cab = found or ("", "", "")
        info = _service_info(crt) if crt else None
        row = {"service": service, "certificate": crt, "key": key, "cabundle": cab}
        services.append({**row, "certificate_info": info})
    return {"services": services}


def _install_service_ssl_certificate(
    root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]
) -> Any:
    service = _required(args, "service")
    if service not in standins.SERVICE_FILES:
        raise layout.ApiError(f"“{service}” is not a valid service name.")
    crt_text, key_text = _required(args, "crt"), _required(args, "key")
    cert, key = certs.load_cert(crt_text), certs.load_key(key_text)
    if not certs.same_public_key(cert, key):
        raise Failed("The certificate does not match the private key.")
    cab = "".join(certs.split_certs(args.get("cabundle") or ""))
    standins.write_service(root, service, certs.cert_pem(cert), certs.key_pem(key), cab)
    # S1 _handle_restarts queues the service restart; the stand-in log shows it happened.
    restart = {"cpanel": "cpsrvd", "ftp": "ftpd"}.get(service, service)
    standins.record(root, f"restartsrv_{restart}", ["--queued-by", "install_service_ssl"])
    meta["reason"] = "OK"
    return {
        "service": service,
        "service_description": standins.SERVICE_DESCRIPTIONS[service],
        "certificate": certs.cert_pem(cert),
        "certificate_info": _service_info(crt_text),
    }


def _gethostname(root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]) -> Any:
    return {"hostname": accounts.hostname(root)}


# ---- API tokens -----------------------------------------------------------------------------


def _read_tokens(root: Path, user: str) -> dict[str, Any]:
    try:
        data = json.loads(layout.api_tokens_file(root, user).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    tokens = data.get("tokens") if isinstance(data, dict) else None
    return tokens if isinstance(tokens, dict) else {}


def create_token(
    root: Path, user: str, name: str, acls: Sequence[str] = ("all",), expires_at: int | None = None
) -> dict[str, Any]:
    """A new API token; only its SHA-512 is stored (S1 Cpanel/Security/Authn/APITokens.pm)."""
    tokens = _read_tokens(root, user)
    if any(t.get("name") == name for t in tokens.values()):
        raise layout.ApiError(f"The API token name “{name}” is already in use.")
    token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(32))
    digest = hashlib.sha512(token.encode()).hexdigest()
    record = {"name": name, "create_time": int(time.time()), "acls": list(acls)}
    record.update({"expires_at": expires_at, "whitelist_ips": None, "token_hash": digest})
    tokens[digest] = record
    path = layout.api_tokens_file(root, user)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.write_file(path, json.dumps({"tokens": tokens}, indent=1), mode=0o600)
    return {"token": token, **{k: record[k] for k in ("name", "create_time", "acls", "expires_at")}}


def check_token(root: Path, user: str, token: str) -> bool:
    """Whether `token` is one of `user`'s live WHM API tokens (hashes compared in constant time)."""
    digest = hashlib.sha512(token.encode()).hexdigest().encode()
    found = False
    for stored, record in _read_tokens(root, user).items():
        same = hmac.compare_digest(str(stored).encode(), digest)
        expires = record.get("expires_at") if isinstance(record, dict) else None
        found |= same and not (expires and int(expires) < time.time())
    return found


def ensure_root_token(root: Path) -> str:
    """root's sandbox token: made once, kept (0600) for the tests and the demo."""
    keep = layout.root_token_file(root)
    existing = layout.read_text(keep).strip()
    if existing and check_token(root, "root", existing):
        return existing
    token = str(create_token(root, "root", f"sandbox-{int(time.time())}")["token"])
    layout.write_file(keep, token + "\n", mode=0o600)
    return token


def _api_token_create(root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]) -> Any:
    acls = args.get_multiple("acl") or ["all"]
    expires = args.get("expires_at")
    name = _required(args, "token_name")
    return create_token(root, authuser, name, acls, int(expires) if expires else None)


def _api_token_list(root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]) -> Any:
    """Tokens keyed by name, without their hashes (S3 api_token_list)."""
    tokens = _read_tokens(root, authuser).values()
    keep = ("name", "create_time", "acls", "expires_at", "whitelist_ips")
    return {"tokens": {t["name"]: {k: t.get(k) for k in keep} for t in tokens if "name" in t}}


def _api_token_revoke(root: Path, authuser: str, args: layout.Args, meta: dict[str, Any]) -> Any:
    """Revoke tokens by name (`token_name`, `token_name-1`, ...); unknown names fail (S3)."""
    names = args.get_multiple("token_name")
    if not names:
        raise layout.ApiError("The parameter “token_name” is required.")
    tokens = _read_tokens(root, authuser)
    known = {t.get("name") for t in tokens.values()}
    missing = [n for n in names if n not in known]
    if missing:
        raise layout.ApiError(f"The API token “{missing[0]}” does not exist.")
    kept = {h: t for h, t in tokens.items() if t.get("name") not in names}
    path = layout.api_tokens_file(root, authuser)
    layout.write_file(path, json.dumps({"tokens": kept}, indent=1), mode=0o600)
    return None


Handler = Callable[[Path, str, layout.Args, dict[str, Any]], Any]
FUNCTIONS: dict[str, Handler] = {
    "listaccts": _listaccts,
    "accountsummary": _accountsummary,
    "create_user_session": _create_user_session,
    "fetch_ssl_vhosts": _fetch_ssl_vhosts,
    "fetch_service_ssl_components": _fetch_service_ssl_components,
    "install_service_ssl_certificate": _install_service_ssl_certificate,
    "api_token_create": _api_token_create,
    "api_token_list": _api_token_list,
    "api_token_revoke": _api_token_revoke,
    "gethostname": _gethostname,
    "get_domain_info": whm_autossl.get_domain_info,
    "get_autossl_providers": whm_autossl.get_autossl_providers,
    "add_autossl_user_excluded_domains": whm_autossl.add_autossl_user_excluded_domains,
    "get_autossl_user_excluded_domains": whm_autossl.get_autossl_user_excluded_domains,
}
