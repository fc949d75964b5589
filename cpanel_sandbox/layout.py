"""Where a cPanel server keeps things, under a sandbox root, and how its plain files are read.

Every path the sandbox touches is named here once (cpanel-api.md §4). Readers parse cPanel's own
formats on every call: nothing is cached, so files written by hand work as well as ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import secrets
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

SANDBOX_IP = "127.0.0.1"


def etc(root: Path, name: str) -> Path:
    return root / "etc" / name


def passwd_file(root: Path) -> Path:
    return etc(root, "passwd")


def group_file(root: Path) -> Path:
    return etc(root, "group")


def userdatadomains_file(root: Path) -> Path:
    return etc(root, "userdatadomains")


def trueuserdomains_file(root: Path) -> Path:
    return etc(root, "trueuserdomains")


def userdomains_file(root: Path) -> Path:
    return etc(root, "userdomains")


def hostname_file(root: Path) -> Path:
    return etc(root, "hostname")


def cpanel_var(root: Path) -> Path:
    return root / "var" / "cpanel"


def cpuser_file(root: Path, user: str) -> Path:
    return cpanel_var(root) / "users" / user


def userdata_dir(root: Path, user: str) -> Path:
    return cpanel_var(root) / "userdata" / user


def resellers_file(root: Path) -> Path:
    return cpanel_var(root) / "resellers"


def feature_list_file(root: Path, name: str) -> Path:
    return cpanel_var(root) / "features" / name


def named_dir(root: Path) -> Path:
    return root / "var" / "named"


def zone_file(root: Path, zone: str) -> Path:
    return named_dir(root) / f"{zone}.db"


def ssl_dir(root: Path) -> Path:
    return cpanel_var(root) / "ssl"


def apache_tls_dir(root: Path, servername: str) -> Path:
    return ssl_dir(root) / "apache_tls" / servername


def api_tokens_file(root: Path, user: str, service: str = "whostmgr") -> Path:
    """`user`'s API tokens for `service`: "whostmgr" (WHM) or "cpanel" (cPanel user tokens)."""
    return cpanel_var(root) / "authn" / "api_tokens_v2" / service / f"{user}.json"


def sessions_dir(root: Path) -> Path:
    return cpanel_var(root) / "sessions"


def sandbox_json(root: Path) -> Path:
    """Written by the running server: ports, pid, challtestsrv URL."""
    return cpanel_var(root) / "sandbox.json"


def root_token_file(root: Path) -> Path:
    return cpanel_var(root) / "sandbox-root-token"


def commands_log(root: Path) -> Path:
    return cpanel_var(root) / "sandbox-commands.log"


def cpanel_bin(root: Path) -> Path:
    return root / "usr" / "local" / "cpanel" / "bin"


def cpanel_scripts(root: Path) -> Path:
    return root / "usr" / "local" / "cpanel" / "scripts"


def sandbox_config(root: Path) -> dict[str, Any]:
    """sandbox.json, or {} when the server is not (or no longer) serving."""
    try:
        data = json.loads(sandbox_json(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_text(path: Path) -> str:
    """The file's text, or "" when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def read_key_values(path: Path) -> dict[str, str]:
    """KEY=VALUE lines with `#` comments (var/cpanel/users/USER, feature lists)."""
    out: dict[str, str] = {}
    for line in read_text(path).splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip()
    return out


def read_colon_map(path: Path) -> dict[str, str]:
    """`key: value` lines (/etc/trueuserdomains, /etc/userdomains)."""
    return parse_colon_map(read_text(path))


def parse_colon_map(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def format_colon_map(entries: dict[str, str]) -> str:
    """Sorted by key with a trailing newline, as cPanel writes them (§4)."""
    return "".join(f"{k}: {v}\n" for k, v in sorted(entries.items()))


# libyaml's parser when PyYAML has it: the pure-Python one costs ~1 ms a vhost file, and the
# site server reads every vhost's file to map a Host header (big sandboxes, bench/).
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Parsed files, each checked against its (inode, size, mtime) at every read: a file replaced
# (write_file renames a new inode in) or edited by hand is parsed again, so readers still get
# what is on disk now, for a stat a read. WHM's listaccts and fetch_ssl_vhosts over 5,000
# accounts took minutes without it (bench/).
_parsed: dict[tuple[str, str], tuple[tuple[int, int, int], Any]] = {}
_PARSED_LIMIT = 100_000
T = TypeVar("T")


def parsed(path: Path, kind: str, parse: Callable[[str], T]) -> T:
    """`parse(text)` of the file ("" when missing), reused while the file is unchanged. The
    result is shared between callers: never change it (read_yaml hands out copies)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return parse("")
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    key = (kind, str(path))
    hit = _parsed.get(key)
    if hit is not None and hit[0] == stamp:
        return cast(T, hit[1])
    value = parse(read_text(path))
    if len(_parsed) >= _PARSED_LIMIT:
        _parsed.clear()
    _parsed[key] = (stamp, value)
    return value


def _yaml_pickle(text: str) -> bytes:
    data = yaml.load(text, Loader=_SafeLoader) if text else None  # noqa: S506 - a safe loader
    return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)


def read_yaml(path: Path) -> Any:
    """The YAML file's data (a fresh copy each call: callers change it), None when missing."""
    return pickle.loads(parsed(path, "yaml", _yaml_pickle))  # noqa: S301 - our own pickle


def dump_yaml(data: Any) -> str:
    return "---\n" + yaml.safe_dump(data, default_flow_style=False, sort_keys=True)


def write_file(
    path: Path, text: str | bytes, *, mode: int = 0o644, uid: int = -1, gid: int = -1
) -> None:
    """Write through a temp file and rename, so a concurrent reader sees old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        if (uid != -1 or gid != -1) and os.geteuid() == 0:
            os.chown(tmp, uid, gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def first_untraversable(path: Path) -> Path | None:
    """The first existing folder on the way to `path` that other uids cannot traverse (no o+x)."""
    path = path.absolute()
    for folder in [*reversed(path.parents), path]:
        try:
            st = folder.stat()
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            return folder
    return None


class ApiError(Exception):
    """A call that fails the way cPanel fails: `errors` go to the envelope, `data` may stay set."""

    def __init__(self, *errors: str, data: Any = None) -> None:
        super().__init__(errors[0] if errors else "")
        self.errors = list(errors)
        self.data = data


class Args:
    """A request's parameters with cPanel's multi-value rule (cpanel-api.md §1.1):
    every key matching `^name(-\\d+)?$` belongs to `name`, plain `name` first, then by number."""

    def __init__(self, raw: Mapping[str, Sequence[str]]) -> None:
        self.raw = raw

    def get(self, name: str) -> str | None:
        values = self.raw.get(name)
        return values[0] if values else None

    def get_multiple(self, name: str) -> list[str]:
        pattern = re.compile(rf"^{re.escape(name)}(?:-(\d+))?$")
        found: list[tuple[int, int, str]] = []
        for key, values in self.raw.items():
            m = pattern.match(key)
            if not m:
                continue
            order = -1 if m.group(1) is None else int(m.group(1))
            found += [(order, i, v) for i, v in enumerate(values)]
        return [v for _, _, v in sorted(found)]

    def flag(self, *names: str) -> bool:
        return any((self.get(n) or "0") not in ("", "0") for n in names)
