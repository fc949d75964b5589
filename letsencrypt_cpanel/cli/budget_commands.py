"""`le-cp budgets [--json]`: how much of the CA's rate limits root has counted as spent, and what
the CA has paused (budgets.py). What an admin looks at when an order is held back."""

from __future__ import annotations

import argparse
import json
import time

from ..config import Settings
from .common import require_root

_WORDS = {
    "new_accounts": "new accounts (per IP address)",
    "new_orders": "new orders (per account)",
    "certs_per_domain": "certificates (per registered domain)",
    "duplicates": "certificates (per exact set of names)",
    "failed_validations": "failed validations (per account and name)",
}


def _window(seconds: int) -> str:
    return f"{seconds // 86400} d" if seconds >= 86400 else f"{seconds / 3600:g} h"


def cmd_budgets(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    from ..budgets import Budgets

    now = time.time()
    with Budgets.open(settings) as budgets:
        limits, used, paused = budgets.limits, budgets.usage(now), budgets.pauses(now)
    if args.json:
        data = {
            "directory": settings.acme_directory,
            "limits": {k: {"count": v.count, "window": v.window} for k, v in limits.items()},
            "used": [{"kind": k, "key": key, "used": n} for k, key, n in used],
            "paused": [
                {"kind": k, "key": key, "until": until, "detail": detail}
                for k, key, until, detail in paused
            ],
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"Rate-limit budgets for {settings.acme_directory}")
    for kind, limit in limits.items():
        print(f"  {_WORDS.get(kind, kind)}: {limit.count} per {_window(limit.window)}")
    if not used and not paused:
        print("Nothing spent in any window.")
    for kind, key, n in used[: args.top]:
        limit = limits[kind]
        print(f"{n:>5} of {limit.count:<5} {kind:<20} {key}")
    if len(used) > args.top:
        print(f"... and {len(used) - args.top} more (--top N, or --json)")
    for kind, key, until, detail in paused:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until))
        print(f"paused until {when}: {kind} {key} (the CA said: {detail})")
    return 0


def register(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = top.add_parser(
        "budgets", help="how much of the CA's rate limits is spent, and what the CA paused"
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--top", type=int, default=20, help="show the N fullest budgets (default 20)")
    p.set_defaults(func=cmd_budgets)
