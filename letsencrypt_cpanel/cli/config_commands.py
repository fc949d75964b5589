"""`le-cp config list|set`."""

from __future__ import annotations

import argparse
import json
import sys

from ..config import SECRET_KEYS, Settings, public_items, set_value
from .common import UsageError, require_root, tell_daemon


def cmd_config_list(settings: Settings, args: argparse.Namespace) -> int:
    items = public_items(settings)
    if args.json:
        print(
            json.dumps(
                {k: list(v) if isinstance(v, tuple) else v for k, v in items.items()}, indent=2
            )
        )
        return 0
    width = max(len(k) for k in items)
    for key, value in items.items():
        shown = ",".join(value) if isinstance(value, tuple) else value
        print(f"{key.ljust(width)}  {shown}")
    for key in sorted(SECRET_KEYS):
        print(f"{key.ljust(width)}  (secret: set with `le-cp config set {key}` and standard input)")
    return 0


def cmd_config_set(settings: Settings, args: argparse.Namespace) -> int:
    key: str = args.key
    if key in SECRET_KEYS:
        if args.value is not None:
            raise UsageError(
                f"{key} is a secret: give it on standard input, never on the command line "
                f"(e.g. `le-cp config set {key} < file`)"
            )
        require_root()
        value = sys.stdin.readline().strip()
        if not value:
            raise UsageError(f"no value for {key} was given on standard input")
    else:
        if args.value is None:
            raise UsageError(f"give a value: le-cp config set {key} VALUE")
        value = args.value
    set_value(settings, key, value)
    tell_daemon(settings, f"{key} saved")
    return 0


def register(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = top.add_parser("config", help="show or change settings")
    config_sub = config.add_subparsers(dest="action", required=True)
    p = config_sub.add_parser("list", help="every setting and its value (secrets not shown)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config_list)
    p = config_sub.add_parser("set", help="change a setting (a secret's value is read from stdin)")
    p.add_argument("key")
    p.add_argument("value", nargs="?")
    p.set_defaults(func=cmd_config_set)
