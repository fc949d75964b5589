"""The system accounts root may run a job as: `/etc/passwd` and `/etc/group` under the root prefix.

Read from the files, not with `pwd`/`grp`, so the sandbox's accounts (under `Settings.root`) and a
real server's go through the same code. Root (any uid 0) and system accounts (uid or gid below
`MIN_USER_ID`) are refused: a worker never runs with their rights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import Error

# cPanel creates accounts from uid 500 up (older servers) or 1000 (newer); below is the system's.
MIN_USER_ID = 500
# /etc/passwd is small; this only stops a runaway file from being read whole.
_MAX_FILE_BYTES = 64 * 1024 * 1024


class UserRefused(Error):
    """No job may run as this account: unknown, root, or a system account."""

    def __init__(self, user: str, reason: str) -> None:
        self.user = user
        self.reason = reason
        super().__init__(f"Cannot run a job as {user!r}: {reason}.")


@dataclass(frozen=True)
class SystemUser:
    name: str
    uid: int
    gid: int
    home: Path
    shell: str


def lookup_user(settings: Settings, name: str) -> SystemUser:
    """The account `name` from `/etc/passwd` (first entry wins, as getpwnam does).

    Raises UserRefused when the name is unknown or malformed, the account is root or has uid 0
    or gid 0, its uid or gid is below MIN_USER_ID, or its home is not an absolute path.
    """
    if not _plausible_name(name):
        raise UserRefused(name, "this is not a valid user name")
    for fields in _entries(settings.path("/etc/passwd"), 7):
        if fields[0] != name:
            continue
        uid, gid = _number(fields[2]), _number(fields[3])
        if uid is None or gid is None:
            raise UserRefused(name, "its /etc/passwd entry is malformed")
        if name == "root" or uid == 0 or gid == 0:
            raise UserRefused(name, "it is root")
        if uid < MIN_USER_ID or gid < MIN_USER_ID:
            raise UserRefused(name, f"it is a system account (uid {uid}, gid {gid})")
        home = fields[5]
        if not home.startswith("/"):
            raise UserRefused(name, "its home folder is not an absolute path")
        return SystemUser(name=name, uid=uid, gid=gid, home=Path(home), shell=fields[6])
    raise UserRefused(name, "there is no such user")


def supplementary_gids(settings: Settings, name: str) -> list[int]:
    """The ids of the groups in `/etc/group` that list `name` as a member, sorted, unique.

    Group 0 is left out even when listed: a worker must never hold root's group.
    """
    gids: set[int] = set()
    for fields in _entries(settings.path("/etc/group"), 4):
        gid = _number(fields[2])
        if gid and name in fields[3].split(","):
            gids.add(gid)
    return sorted(gids)


def _entries(path: Path, width: int) -> list[list[str]]:
    """The colon-separated lines of `path` that have exactly `width` fields."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(_MAX_FILE_BYTES)
    except OSError as exc:
        raise Error(f"{path} cannot be read: {exc.strerror}.") from exc
    entries = []
    for line in raw.decode("utf-8", errors="replace").splitlines():
        # Comments and NIS compat lines ("+", "-") name no local account.
        if not line or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) == width:
            entries.append(fields)
    return entries


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _plausible_name(name: str) -> bool:
    return bool(name) and len(name) <= 64 and not any(c in name for c in ":/,\n\0 ")
