"""cPanel standardized hooks: a new account or a new domain is secured within minutes.

cPanel runs `plugin/hooks/letsencrypt-cpanel-hook` after account creation and after an addon,
sub or parked domain is added (`HOOKS`; registered by the installer with
`/usr/local/cpanel/bin/manage_hooks add script PATH`, which asks the script `--describe`). The
hook only queues the account: one empty file per user in `autossl-queue/` under the state dir,
which the daemon drains every minute (`take_queued`) with `autossl.run_once(users=...)`. It never
issues itself: account creation must not wait for a CA, and a hook failing must not fail it, so
the script always exits 0 after saying what it did.

The domain hooks are `escalateprivs` (they run as root, like the account hook), because the
queue folder is root's. The user comes from cPanel's hook data (`data.user`), never from the
API arguments the user sent, and it must be a cPanel account name; the daemon still runs AutoSSL
only for accounts WHM lists.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from .config import Settings

QUEUE_DIR = "autossl-queue"
# cPanel account names: lower-case letters and digits, starting with a letter, at most 16.
_USER = re.compile(r"^[a-z][a-z0-9]{0,15}$")
MAX_INPUT = 1024 * 1024

_DOMAIN_EVENTS = (
    "Api2::AddonDomain::addaddondomain",
    "Api2::SubDomain::addsubdomain",
    "Api2::Park::park",
    "UAPI::SubDomain::addsubdomain",
)


def hook_descriptions(script: str) -> list[dict[str, Any]]:
    """What `manage_hooks add script` registers (the `--describe` answer)."""
    account = {
        "category": "Whostmgr",
        "event": "Accounts::Create",
        "stage": "post",
        "hook": script,
        "exectype": "script",
    }
    domains = [
        {
            "category": "Cpanel",
            "event": event,
            "stage": "post",
            "hook": script,
            "exectype": "script",
            "escalateprivs": 1,
        }
        for event in _DOMAIN_EVENTS
    ]
    return [account, *domains]


def queue_dir(settings: Settings) -> Path:
    return settings.state_dir / QUEUE_DIR


def queue_user(settings: Settings, user: str) -> bool:
    """Queue an AutoSSL run for `user`; False when the name is not an account name."""
    if not _USER.match(user):
        return False
    folder = queue_dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / user
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, f"{int(time.time())}\n".encode("ascii"))
    finally:
        os.close(fd)
    return True


def queued_users(settings: Settings) -> list[str]:
    folder = queue_dir(settings)
    try:
        names = [p.name for p in folder.iterdir()]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if _USER.match(n))


def take_queued(settings: Settings) -> list[str]:
    """The queued users, oldest first, removed from the queue (a hook firing meanwhile queues
    the user again, so nothing is lost)."""
    folder = queue_dir(settings)
    taken = []
    for user in queued_users(settings):
        path = folder / user
        try:
            stamp = path.lstat().st_mtime
            path.unlink()
        except FileNotFoundError:
            continue
        taken.append((stamp, user))
    return [user for _, user in sorted(taken)]


def user_from_hook_data(payload: Any) -> str:
    """The account a hook event is about: `data.user` (cPanel sets it for both categories)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    user = data.get("user") if isinstance(data, dict) else None
    return user if isinstance(user, str) else ""


def main(argv: Sequence[str], stdin: TextIO, settings: Settings, script: str) -> int:
    """The hook script: `--describe`, or one event's JSON on stdin."""
    if "--describe" in argv:
        print(json.dumps(hook_descriptions(script)))
        return 0
    try:
        payload = json.loads(stdin.read(MAX_INPUT) or "{}")
    except ValueError:
        payload = {}
    user = user_from_hook_data(payload)
    if not settings.autossl_enabled:
        # The daemon runs what is queued: with AutoSSL off, nothing may be.
        print("1 letsencrypt-cpanel: AutoSSL is off; nothing queued")
        return 0
    try:
        queued = queue_user(settings, user)
    except OSError as exc:
        print(f"1 letsencrypt-cpanel: AutoSSL not queued for {user!r}: {exc}")
        return 0
    # cPanel reads "1 <message>" as success; a hook must never fail the account or the domain.
    note = "AutoSSL queued" if queued else "no account name in the event"
    print(
        f"1 letsencrypt-cpanel: {note} for {user!r}" if queued else f"1 letsencrypt-cpanel: {note}"
    )
    sys.stdout.flush()
    return 0
