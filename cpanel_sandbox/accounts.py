"""Accounts in cPanel's own file formats (cpanel-api.md §4), read back on every call.

Nothing here keeps a private copy: an account is what /etc/passwd, /var/cpanel/users/USER and
/var/cpanel/userdata/USER/* say, so an account written by hand works like one made by add_user.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpanel_sandbox import layout, zones

# Proxy subdomains cPanel answers for on every main, addon and parked domain (service subdomains).
PROXY_LABELS = ("cpanel", "webmail", "webdisk", "cpcalendars", "cpcontacts", "autodiscover")
FIRST_UID = 20000
USER_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Files in userdata/USER that are not vhosts (§4: cache, cache.json, *.php-fpm.yaml, main).
NOT_VHOST_RE = re.compile(r"^(main|cache.*|.*\.(json|yaml|lock)|.*_SSL|\..*)$")


class AccountError(Exception):
    """add_user or init_root refused; str() says why."""


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: Path
    shell: str


@dataclass(frozen=True)
class SiteVhost:
    servername: str
    names: tuple[str, ...]
    docroot: Path
    user: str


def hostname(root: Path) -> str:
    return layout.read_text(layout.hostname_file(root)).strip() or "server.sandbox.test"


def _passwd_lines(path: Path) -> Iterator[list[str]]:
    for line in layout.read_text(path).splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and not line.startswith("#"):
            yield fields


def _passwd_index(text: str) -> dict[str, PasswdEntry]:
    out: dict[str, PasswdEntry] = {}
    for line in text.splitlines():
        f = line.split(":")
        ok = len(f) >= 7 and f[2].isdigit() and f[3].isdigit() and not line.startswith("#")
        if ok and f[0] not in out:
            out[f[0]] = PasswdEntry(f[0], int(f[2]), int(f[3]), Path(f[5]), f[6])
    return out


def passwd_entry(root: Path, user: str) -> PasswdEntry | None:
    # Indexed once per version of the file: listaccts asks for every account (bench/).
    return layout.parsed(layout.passwd_file(root), "passwd", _passwd_index).get(user)


def user_for_uid(root: Path, uid: int) -> str | None:
    for f in _passwd_lines(layout.passwd_file(root)):
        if f[2] == str(uid):
            return f[0]
    return None


def list_users(root: Path) -> list[str]:
    """cPanel accounts: one file per user in var/cpanel/users/ (§4)."""
    folder = layout.cpanel_var(root) / "users"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and USER_RE.match(p.name))


def cpuser(root: Path, user: str) -> dict[str, str]:
    return layout.read_key_values(layout.cpuser_file(root, user))


def user_exists(root: Path, user: str) -> bool:
    return bool(USER_RE.match(user)) and layout.cpuser_file(root, user).is_file()


def main_data(root: Path, user: str) -> dict[str, Any]:
    data = layout.read_yaml(layout.userdata_dir(root, user) / "main")
    return data if isinstance(data, dict) else {}


def vhost_data(root: Path, user: str, servername: str) -> dict[str, Any] | None:
    if "/" in servername or servername.startswith("."):
        return None
    data = layout.read_yaml(layout.userdata_dir(root, user) / servername)
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("documentroot"), str):
        data["documentroot"] = data["documentroot"].rstrip("/") or "/"  # Load.pm strips it (§4)
    return data


def addon_map(main: dict[str, Any]) -> dict[str, str]:
    addons = main.get("addon_domains") or {}
    return {str(k): str(v) for k, v in addons.items()} if isinstance(addons, dict) else {}


def all_domains(root: Path, user: str) -> list[str]:
    """Main, addon, sub (not addon-backing) and parked domains: what the user owns."""
    main = main_data(root, user)
    addons = addon_map(main)
    backing = set(addons.values())
    subs = [s for s in main.get("sub_domains") or [] if s not in backing]
    out = [main.get("main_domain"), *addons, *subs, *(main.get("parked_domains") or [])]
    return [str(d) for d in out if d]


def zone_names(root: Path, user: str) -> list[str]:
    """Domains with their own DNS zone: main, addon and parked."""
    main = main_data(root, user)
    out = [main.get("main_domain"), *addon_map(main), *(main.get("parked_domains") or [])]
    return [str(d) for d in out if d]


def vhost_domains(main: dict[str, Any], servername: str) -> list[str]:
    """The domains a vhost serves: main + parked on the main vhost, the addon on its backing sub."""
    if servername == main.get("main_domain"):
        return [servername, *[str(p) for p in main.get("parked_domains") or []]]
    return [servername, *[a for a, sub in addon_map(main).items() if sub == servername]]


def vhost_names(main: dict[str, Any], servername: str, data: dict[str, Any]) -> list[str]:
    """servername + serveralias + proxy subdomains of the vhost's main/addon/parked domains."""
    names = [servername, *str(data.get("serveralias") or "").split()]
    own = vhost_domains(main, servername)
    proxied = own if servername == main.get("main_domain") else own[1:]
    names += [f"{label}.{d}" for d in proxied for label in PROXY_LABELS]
    return list(dict.fromkeys(n.lower() for n in names))


def vhost_servernames(root: Path, user: str) -> list[str]:
    folder = layout.userdata_dir(root, user)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not NOT_VHOST_RE.match(p.name))


def vhost_for_name(root: Path, user: str, name: str) -> str | None:
    """The servername of the user's vhost answering for `name`, if any."""
    name = name.lower().rstrip(".")
    main = main_data(root, user)
    for servername in vhost_servernames(root, user):
        data = vhost_data(root, user, servername)
        if data is not None and name in vhost_names(main, servername, data):
            return servername
    return None


def site_vhosts(root: Path, users: Iterable[str] | None = None) -> list[SiteVhost]:
    """Every vhost of every account (or of `users`) with the names it answers to."""
    out: list[SiteVhost] = []
    for user in list_users(root) if users is None else users:
        main = main_data(root, user)
        for servername in vhost_servernames(root, user):
            data = vhost_data(root, user, servername)
            if data is None:
                continue
            docroot = Path(str(data.get("documentroot") or ""))
            names = tuple(vhost_names(main, servername, data))
            out.append(SiteVhost(servername, names, docroot, user))
    return out


# ---- creating accounts ---------------------------------------------------------------------


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    lock = layout.etc(root, ".sandbox-accounts.lock")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _ids_in(path: Path, column: int) -> set[int]:
    out: set[int] = set()
    for line in layout.read_text(path).splitlines():
        fields = line.split(":")
        if len(fields) > column and fields[column].isdigit():
            out.add(int(fields[column]))
    return out


def _free_id(root: Path) -> int:
    """A uid (= gid) from 20000 up, unused by the sandbox and by the machine itself."""
    used = _ids_in(layout.passwd_file(root), 2) | _ids_in(Path("/etc/passwd"), 2)
    used |= _ids_in(layout.group_file(root), 2) | _ids_in(Path("/etc/group"), 2)
    uid = FIRST_UID
    while uid in used:
        uid += 1
    return uid


def _append(path: Path, line: str) -> None:
    text = layout.read_text(path)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    layout.write_file(path, text + line + "\n", mode=mode)


def _check_names(root: Path, user: str, domains: list[str]) -> None:
    if not USER_RE.match(user):
        raise AccountError(f"Invalid user name “{user}”.")
    if passwd_entry(root, user) or layout.cpuser_file(root, user).exists():
        raise AccountError(f"The user “{user}” already exists.")
    taken = layout.read_colon_map(layout.userdomains_file(root))
    for d in domains:
        if not DOMAIN_RE.match(d):
            raise AccountError(f"Invalid domain “{d}”.")
        if d in taken:
            raise AccountError(f"The domain “{d}” already exists (owner “{taken[d]}”).")
    if len(set(domains)) != len(domains):
        raise AccountError("A domain is listed twice.")


@dataclass
class NewAccount:
    """What add_user lays out: names, ids and each vhost's (docroot, serveralias list)."""

    user: str
    owner: str
    uid: int
    home: Path
    domain: str
    backing: dict[str, str]  # addon -> its backing subdomain
    subs: list[str]
    parked: list[str]
    vhosts: dict[str, tuple[Path, list[str]]]


def add_user(
    root: Path,
    user: str,
    domain: str,
    *,
    addons: Iterable[str] = (),
    subs: Iterable[str] = (),
    parked: Iterable[str] = (),
    email: str | None = None,
    owner: str = "root",
    plan: str = "default",
) -> None:
    """Create an account the way cPanel lays it out (§4); raises AccountError when refused."""
    domain = domain.lower()
    addon_list = [a.lower() for a in addons]
    sub_list, parked_list = [s.lower() for s in subs], [p.lower() for p in parked]
    backing = {a: f"{a.split('.')[0]}.{domain}" for a in addon_list}
    with _locked(root):
        _check_names(root, user, [domain, *addon_list, *sub_list, *parked_list, *backing.values()])
        uid = _free_id(root)
        home = root / "home" / user
        _append(layout.passwd_file(root), f"{user}:x:{uid}:{uid}::{home}:/bin/bash")
        _append(layout.group_file(root), f"{user}:x:{uid}:")
        acct = NewAccount(user, owner, uid, home, domain, backing, sub_list, parked_list, {})
        main_aliases = [f"mail.{domain}", f"www.{domain}"]
        for p in parked_list:
            main_aliases += [p, f"mail.{p}", f"www.{p}"]
        acct.vhosts[domain] = (home / "public_html", main_aliases)
        for sub in sub_list:  # ~/public_html/<label> under the main domain, else ~/<sub>
            label = sub[: -len(domain) - 1] if sub.endswith("." + domain) else ""
            acct.vhosts[sub] = (
                home / "public_html" / label if label else home / sub,
                [f"www.{sub}"],
            )
        for addon, sub in backing.items():
            aliases = [addon, f"mail.{addon}", f"www.{addon}", f"www.{sub}"]
            acct.vhosts[sub] = (home / addon, aliases)
        _make_home(home, uid, [d for d, _ in acct.vhosts.values()])
        _write_userdata(root, acct)
        _write_cpuser(root, acct, plan, email, [domain, *addon_list, *sub_list, *parked_list])
        _write_domain_maps(root, acct)
        for zone in [domain, *addon_list, *parked_list]:
            inside = [s for s in [*sub_list, *backing.values()] if s.endswith("." + zone)]
            labels = [s[: -len(zone) - 1] for s in inside]
            zones.write_new_zone(root, zone, hostname(root), extra_labels=labels)


def _vhost_yaml(acct: NewAccount, servername: str, docroot: Path, aliases: list[str]) -> Any:
    """A vhost's userdata file (§4 keys), as cPanel writes it."""
    log = {"format": "combined", "target": f"/etc/apache2/logs/domlogs/{servername}"}
    return {
        **{"customlog": [log], "documentroot": str(docroot), "group": acct.user, "hascgi": 1},
        **{"homedir": str(acct.home), "ip": layout.SANDBOX_IP, "owner": acct.owner},
        **{"phpopenbasedirprotect": 1, "phpversion": "ea-php81", "port": 80},
        "scriptalias": [{"path": f"{docroot}/cgi-bin", "url": "/cgi-bin/"}],
        "serveradmin": f"webmaster@{servername}",
        "serveralias": " ".join(aliases),
        "servername": servername,
        "usecanonicalname": "Off",
        "user": acct.user,
        "userdirprotect": 0,
    }


def _make_home(home: Path, uid: int, docroots: list[Path]) -> None:
    for folder, mode in [(home, 0o711), (home / ".cpanel", 0o700)] + [(d, 0o755) for d in docroots]:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, mode)
        if os.geteuid() == 0:
            os.chown(folder, uid, uid)


def _write_userdata(root: Path, acct: NewAccount) -> None:
    folder = layout.userdata_dir(root, acct.user)
    folder.mkdir(parents=True, exist_ok=True)
    # root:USER 0750 as on cPanel, so the user's own `uapi` can read it
    os.chmod(folder, 0o750)  # noqa: S103
    if os.geteuid() == 0:
        os.chown(folder, 0, acct.uid)
    main = {
        "main_domain": acct.domain,
        "addon_domains": dict(acct.backing),
        "parked_domains": list(acct.parked),
        "sub_domains": [*acct.subs, *acct.backing.values()],
        "cp_php_magic_include_path.conf": 0,
    }
    layout.write_file(folder / "main", layout.dump_yaml(main), mode=0o640, gid=acct.uid)
    for servername, (docroot, aliases) in acct.vhosts.items():
        data = _vhost_yaml(acct, servername, docroot, aliases)
        layout.write_file(folder / servername, layout.dump_yaml(data), mode=0o640, gid=acct.uid)


def _write_cpuser(
    root: Path, acct: NewAccount, plan: str, email: str | None, domains: list[str]
) -> None:
    lines = [f"DNS={domains[0]}"] + [f"DNS{i}={d}" for i, d in enumerate(domains[1:], 1)]
    lines += [
        f"CONTACTEMAIL={email or ''}",
        "CONTACTEMAIL2=",
        "FEATURELIST=default",
        f"IP={layout.SANDBOX_IP}",
        "LOCALE=en",
        f"OWNER={acct.owner}",
        f"PLAN={plan}",
        "RS=jupiter",
        "SSL_DEFAULT_KEY_TYPE=system",
        f"STARTDATE={int(time.time())}",
        f"USER={acct.user}",
        "notify_ssl_expiry=1",
        "notify_autossl_expiry=1",
    ]
    text = "# cPanel -- If you edit this file directly you must run /scripts/updateuserdomains\n"
    path = layout.cpuser_file(root, acct.user)
    layout.write_file(path, text + "\n".join(lines) + "\n", mode=0o640, gid=acct.uid)


def _write_domain_maps(root: Path, acct: NewAccount) -> None:
    ip, vhosts, main = layout.SANDBOX_IP, acct.vhosts, acct.domain

    def row(name: str, kind: str, parent: str, docroot: Path) -> str:
        # §4: user==owner==type==parent==docroot==ip:port==ssl_ip:port==ipv6==modsec==php
        fields = [acct.user, acct.owner, kind, parent, str(docroot), f"{ip}:80", f"{ip}:443"]
        return f"{name}: " + "==".join([*fields, "", "0", "ea-php81"])

    rows = [row(main, "main", main, vhosts[main][0])]
    rows += [row(s, "sub", main, vhosts[s][0]) for s in [*acct.subs, *acct.backing.values()]]
    rows += [row(a, "addon", s, vhosts[s][0]) for a, s in acct.backing.items()]
    rows += [row(p, "parked", main, vhosts[main][0]) for p in acct.parked]
    path = layout.userdatadomains_file(root)
    layout.write_file(path, layout.read_text(path) + "".join(r + "\n" for r in rows), mode=0o640)

    true_map = layout.read_colon_map(layout.trueuserdomains_file(root))
    true_map[main] = acct.user
    layout.write_file(layout.trueuserdomains_file(root), layout.format_colon_map(true_map))
    all_map = layout.read_colon_map(layout.userdomains_file(root))
    all_map.pop("*", None)
    for name in [main, *acct.subs, *acct.backing.values(), *acct.backing, *acct.parked]:
        all_map[name] = acct.user
    text = layout.format_colon_map(all_map) + "*: nobody\n"
    layout.write_file(layout.userdomains_file(root), text)


def init_root(root: Path) -> str:
    """A cPanel server's skeleton under `root`; returns root's WHM API token. Idempotent."""
    from cpanel_sandbox import standins, whm  # they build on this module

    root = root.absolute()
    blocked = layout.first_untraversable(root)
    if blocked is not None:
        raise AccountError(
            f"{root} is not traversable by every uid: {blocked} lacks the o+x permission."
        )
    standins.build_skeleton(root)
    return whm.ensure_root_token(root)
