"""`le-cp autossl enable|disable|run [--user U]|status`: the plugin's AutoSSL."""

from __future__ import annotations

import argparse
import json
import time

from ..config import Settings, set_value
from .common import require_root, tell_daemon


def cmd_enable(settings: Settings, args: argparse.Namespace) -> int:
    set_value(settings, "autossl_enabled", "true" if args.action == "enable" else "false")
    tell_daemon(settings, f"AutoSSL {'enabled' if args.action == 'enable' else 'disabled'}")
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    from ..autossl import FAILED, describe_vhost, run_once

    users = args.user or None
    result = run_once(settings, time.time(), users=users, force=True)
    if args.json:
        data = {
            "vhosts": [v.summary() for v in result.vhosts],
            "worker_failures": result.worker_failures,
            "accounts_created": result.accounts_created,
        }
        print(json.dumps(data, indent=2))
    else:
        for v in result.vhosts:
            print(describe_vhost(v.summary()))
            for name, reason in v.skipped:
                print(f"    left off {name}: {reason}")
        for user, error in result.worker_failures.items():
            print(f"{user}: the worker failed: {error}")
        print(result.describe())
    return 1 if result.worker_failures or result.with_status(FAILED) else 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    from ..autossl import describe_vhost, load_report
    from ..budgets import Budgets

    report = load_report(settings)
    with Budgets.open(settings) as budgets:
        deferred = budgets.deferred()
    if args.json:
        data = {
            "enabled": settings.autossl_enabled,
            "report": report,
            "deferred": [
                {
                    "user": d.user,
                    "vhost": d.vhost,
                    "names": list(d.names),
                    "reason": d.reason,
                    "since": d.since,
                    "until": d.until,
                }
                for d in deferred
            ],
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"AutoSSL is {'on' if settings.autossl_enabled else 'off'}")
    for user, entry in sorted(report.get("users", {}).items()):
        for row in entry.get("vhosts", []):
            print(describe_vhost(row))
            for item in row.get("skipped", []):
                print(f"    left off {item.get('name')}: {item.get('reason')}")
        if entry.get("worker_error"):
            print(f"{user}: the worker failed: {entry['worker_error']}")
    for d in deferred:
        print(f"deferred {d.user} {d.vhost}: {d.reason}")
    return 0


def register(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    autossl = top.add_parser("autossl", help="secure every website that has no valid certificate")
    sub = autossl.add_subparsers(dest="action", required=True)
    for action in ("enable", "disable"):
        p = sub.add_parser(action, help=f"{action} AutoSSL in every daemon cycle")
        p.set_defaults(func=cmd_enable)
    p = sub.add_parser("run", help="run AutoSSL now (for every account, or --user U)")
    p.add_argument("--user", action="append", help="only this account (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("status", help="what the last runs did, and the work deferred by budgets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
