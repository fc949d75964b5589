"""Shared pieces of le-cp's subcommands."""

from __future__ import annotations

import os
import time

from ..config import Settings
from ..errors import Error
from ..record_format import JSONValue


class UsageError(Error):
    pass


def require_root() -> None:
    if os.geteuid() != 0:
        raise UsageError(
            "le-cp must be run as root (it acts for users through their own cPanel sessions)"
        )


def date(epoch: object) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(int(epoch))) if isinstance(epoch, int) else "-"


def names_of(row: dict[str, JSONValue]) -> str:
    """A summary's `names` list as text (the summary came from a worker: untrusted)."""
    names = row.get("names")
    return ", ".join(str(n) for n in names) if isinstance(names, list) else ""


def tell_daemon(settings: Settings, saved: str) -> None:
    """After a setting was saved: SIGHUP to the running daemon, and one line saying what was
    saved and whether the daemon rereads it now or when it starts."""
    from ..daemon_signal import reread_settings

    print(f"{saved}; {reread_settings(settings).describe_reread()}")
