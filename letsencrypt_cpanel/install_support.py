"""What install.sh and uninstall.sh ask of Python: exact edits of files shared with cPanel and
CloudLinux, the config files, and the daemon's WHM API token.

Run as `python -m letsencrypt_cpanel.install_support ACTION [ARG...]` with `LECP_ROOT` set. Each
action prints `changed` or `unchanged` on stdout (the shell decides from it what to restart, so a
second install changes nothing and restarts nothing), explanations on stderr, and never a secret.
The token travels from `whmapi1`'s output straight into the 0600 secrets file: nothing secret
goes on a command line (ARCHITECTURE.md "How cPanel is called").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .config import Settings, load_secrets, root_from_env, set_value
from .cpanel import CommandLineTransport, WhmAPI, WhmTransport
from .errors import Error

TOKEN_NAME = "letsencrypt-cpanel"  # noqa: S105 - the name, not the secret
# FleetSSL named its tokens `letsencrypt-cpanel-autogen_<date>` (prior-art §1.1 "WHM API auth").
FLEETSSL_TOKEN_PREFIX = "letsencrypt-cpanel-autogen_"  # noqa: S105 - a name
FLEETSSL_TOKEN_FILE = "/etc/.letsencrypt-cpanel-api-token"  # noqa: S105 - a path
CHKSERVD_CONF = "/etc/chkserv.d/chkservd.conf"
CAGEFS_MP = "/etc/cagefs/cagefs.mp"
# Keys only FleetSSL's config has; some hold private keys and the SMTP password (prior-art §1.6),
# so such a file can never become our world-readable config.
FLEETSSL_CONFIG_KEYS = frozenset(
    {"db", "insecure", "hostaccountkey", "hostdomainkey", "hostdomaincertpem", "issuercertpem"}
    | {"external_mail_server", "hook_post_renewal", "crypto_key_type", "hostcert"}
)


def rewrite(path: Path, text: str, mode: int) -> None:
    """Replace `path` atomically (temp file in the same folder, fsync, rename) with `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _mode_of(path: Path, default: int) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return default


# ---- chkservd (cpanel-api.md §6) -----------------------------------------------------------


def enable_chkservd(path: Path, service: str) -> bool:
    """Add `service:1` unless the service has a line (an admin's `:0` is their choice, kept).
    cPanel writes the file sorted with a trailing newline (Cpanel/Chkservd/Manage.pm)."""
    lines = _lines(path)
    if any(line.split(":", 1)[0].strip() == service for line in lines):
        return False
    rewrite(path, "\n".join(sorted([*lines, f"{service}:1"])) + "\n", _mode_of(path, 0o644))
    return True


def disable_chkservd(path: Path, services: Iterable[str]) -> bool:
    names = set(services)
    lines = _lines(path)
    kept = [line for line in lines if line.split(":", 1)[0].strip() not in names]
    if kept == lines:
        return False
    rewrite(path, "".join(f"{line}\n" for line in sorted(kept)), _mode_of(path, 0o644))
    return True


# ---- CageFS: the plugin's folder mounted in every user's cage ------------------------------


def _mount_path(line: str) -> str:
    """The folder of a cagefs.mp line: `@`/`%`/`!` prefixes and a `,mode` suffix dropped."""
    return line.strip().lstrip("!@%").split(",", 1)[0].rstrip("/") or "/"


def add_cagefs_mount(path: Path, folder: str) -> bool:
    """List `folder` in cagefs.mp unless it or a parent (e.g. `/opt`) is already mounted.
    The caller runs `cagefsctl --remount-all` when this returns True (CloudLinux "Mount Points")."""
    lines = _lines(path)
    wanted = folder.rstrip("/")
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        mounted = _mount_path(line)
        if wanted == mounted or wanted.startswith(mounted.rstrip("/") + "/"):
            return False
    rewrite(path, "".join(f"{line}\n" for line in [*lines, wanted]), _mode_of(path, 0o644))
    return True


def remove_cagefs_mount(path: Path, folder: str) -> bool:
    wanted = folder.rstrip("/")
    lines = _lines(path)
    kept = [line for line in lines if line.strip().rstrip("/") != wanted]
    if kept == lines:
        return False
    rewrite(path, "".join(f"{line}\n" for line in kept), _mode_of(path, 0o644))
    return True


# ---- config and secrets --------------------------------------------------------------------


def ensure_config(settings: Settings) -> bool:
    """The public config exists and is 0644 (the cPanel page reads it as the user); the secrets
    file, when present, is 0600. Existing settings are never changed."""
    changed = False
    if not settings.config_file.exists():
        rewrite(settings.config_file, "{}\n", 0o644)
        changed = True
    elif _mode_of(settings.config_file, 0o644) != 0o644:
        settings.config_file.chmod(0o644)
        changed = True
    if settings.secrets_file.exists() and _mode_of(settings.secrets_file, 0o600) != 0o600:
        settings.secrets_file.chmod(0o600)
        changed = True
    return changed


def set_aside_fleetssl_config(settings: Settings) -> bool:
    """Move FleetSSL's config (same path as ours, but holding keys) to `<path>.fleetssl`, 0600."""
    path = settings.config_file
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        data = {"unparsable": True}
    if isinstance(data, dict) and not (set(data) & (FLEETSSL_CONFIG_KEYS | {"unparsable"})):
        return False
    aside = path.with_name(path.name + ".fleetssl")
    path.chmod(0o600)
    os.replace(path, aside)
    print(f"FleetSSL's configuration was kept as {aside}", file=sys.stderr)
    return True


# ---- the daemon's WHM API token -------------------------------------------------------------


def token_names(transport: WhmTransport) -> set[str]:
    """Names of root's WHM API tokens (`api_token_list` gives names and dates, no secrets)."""
    data = transport.call_whm("api_token_list", {}).get("data")
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if isinstance(tokens, dict):
        return {str(t.get("name", k)) if isinstance(t, dict) else str(k) for k, t in tokens.items()}
    if isinstance(tokens, list):  # older answers: a list of token objects
        return {str(t.get("name")) for t in tokens if isinstance(t, dict) and t.get("name")}
    return set()


def ensure_token(settings: Settings, transport: WhmTransport) -> bool:
    """One token named `letsencrypt-cpanel`, its value in the secrets file. Reused while both
    exist; when the secret was lost (or the token revoked) the old one is revoked and replaced,
    so tokens never pile up."""
    names = token_names(transport)
    if load_secrets(settings).whm_token and TOKEN_NAME in names:
        return False
    if TOKEN_NAME in names:
        transport.call_whm("api_token_revoke", {"token_name": TOKEN_NAME})
    token = WhmAPI(transport).api_token_create(TOKEN_NAME)
    set_value(settings, "whm_token", token)
    return True


def revoke_token(settings: Settings, transport: WhmTransport) -> bool:
    """Uninstall: revoke our token and blank it in the secrets file (other secrets are kept)."""
    changed = False
    if TOKEN_NAME in token_names(transport):
        transport.call_whm("api_token_revoke", {"token_name": TOKEN_NAME})
        changed = True
    if load_secrets(settings).whm_token:
        set_value(settings, "whm_token", "")
        changed = True
    return changed


def retire_fleetssl(settings: Settings, transport: WhmTransport) -> bool:
    """FleetSSL's root tokens revoked and its token file removed; its config set aside."""
    changed = False
    stale = sorted(n for n in token_names(transport) if n.startswith(FLEETSSL_TOKEN_PREFIX))
    if stale:
        transport.call_whm("api_token_revoke", {"token_name": stale})
        changed = True
    token_file = settings.path(FLEETSSL_TOKEN_FILE)
    if token_file.exists() or token_file.is_symlink():
        token_file.unlink()
        changed = True
    return set_aside_fleetssl_config(settings) or changed


# ---- command line ---------------------------------------------------------------------------


def _actions(settings: Settings, args: Sequence[str]) -> dict[str, Callable[[], bool]]:
    def transport() -> WhmTransport:
        return CommandLineTransport(settings.root)

    def arg(index: int) -> str:
        if len(args) <= index:
            raise Error("missing argument")
        return args[index]

    return {
        "chkservd-enable": lambda: enable_chkservd(settings.path(CHKSERVD_CONF), arg(0)),
        "chkservd-disable": lambda: disable_chkservd(settings.path(CHKSERVD_CONF), args),
        "cagefs-add": lambda: add_cagefs_mount(settings.path(CAGEFS_MP), arg(0)),
        "cagefs-remove": lambda: remove_cagefs_mount(settings.path(CAGEFS_MP), arg(0)),
        "ensure-config": lambda: ensure_config(settings),
        "ensure-token": lambda: ensure_token(settings, transport()),
        "revoke-token": lambda: revoke_token(settings, transport()),
        "retire-fleetssl": lambda: retire_fleetssl(settings, transport()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install_support", description=__doc__)
    parser.add_argument("action")
    parser.add_argument("args", nargs="*")
    ns = parser.parse_args(argv)
    # Settings without reading the config: FleetSSL's file may sit there until it is set aside.
    settings = Settings(root=root_from_env())
    actions = _actions(settings, ns.args)
    if ns.action not in actions:
        parser.error(f"unknown action {ns.action!r}; one of: {', '.join(sorted(actions))}")
    try:
        print("changed" if actions[ns.action]() else "unchanged")
    except (Error, OSError) as exc:
        print(f"install: {ns.action}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
