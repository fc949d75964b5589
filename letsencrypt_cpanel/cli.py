"""`le-cp`: the admin's command line. Everything it does for a user runs as that user.

Exit status 0 only on success; a failure is one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import __version__
from .config import (
    KEY_TYPES,
    SECRET_KEYS,
    Settings,
    load_settings,
    public_items,
    set_value,
)
from .errors import Error
from .impersonate import JSONValue


class UsageError(Error):
    pass


def _require_root() -> None:
    if os.geteuid() != 0:
        raise UsageError(
            "le-cp must be run as root (it acts for users through their own cPanel sessions)"
        )


# --- config -----------------------------------------------------------------------------------


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
        _require_root()
        value = sys.stdin.readline().strip()
        if not value:
            raise UsageError(f"no value for {key} was given on standard input")
    else:
        if args.value is None:
            raise UsageError(f"give a value: le-cp config set {key} VALUE")
        value = args.value
    set_value(settings, key, value)
    print(f"{key} saved")
    return 0


# --- ssl --------------------------------------------------------------------------------------


def _run(settings: Settings, user: str, job: Any) -> JSONValue:
    _require_root()
    from .user_jobs import RootSide

    return RootSide.build(settings).run_for_user(user, job)


def _date(epoch: object) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(int(epoch))) if isinstance(epoch, int) else "-"


def cmd_ssl_issue(settings: Settings, args: argparse.Namespace) -> int:
    names: list[str] = list(args.names)
    key_type: str | None = args.key_type

    def job(ctx: Any) -> JSONValue:
        from .issuance import Issuer

        issuer = Issuer(ctx.api, ctx.store, ctx.settings, contact_email=ctx.account.email or None)
        return issuer.issue(names, key_type).summary()  # type: ignore[return-value]

    result = _run(settings, args.user, job)
    if not isinstance(result, dict):
        raise Error("the worker sent back an unexpected summary")
    shown = ", ".join(str(n) for n in result.get("names") or [])  # type: ignore[union-attr]
    how = (
        "Installed the saved certificate"
        if result.get("reused_saved")
        else "Issued and installed a certificate"
    )
    print(f"{how} for {shown} (expires {_date(result.get('not_after'))}).")
    return 0


def cmd_ssl_list(settings: Settings, args: argparse.Namespace) -> int:
    def job(ctx: Any) -> JSONValue:
        from .certificates import statuses

        rows = statuses(
            ctx.api.domains_data(),
            ctx.api.installed_hosts(),
            ctx.store.load(),
            renewal_fraction=ctx.settings.renewal_fraction,
        )
        return [row.summary() for row in rows]

    rows = _run(settings, args.user, job)
    if not isinstance(rows, list):
        raise Error("the worker sent back an unexpected summary")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'WEBSITE':32} {'PLUGIN':6} {'STATUS':36} NAMES")
    for row in rows:
        if not isinstance(row, dict):
            continue
        names = ", ".join(str(n) for n in row.get("names") or [])  # type: ignore[union-attr]
        managed = "yes" if row.get("managed") else "-"
        print(f"{row.get('vhost')!s:32} {managed:6} {row.get('label')!s:36} {names}")
    return 0


def cmd_ssl_reinstall(settings: Settings, args: argparse.Namespace) -> int:
    vhost: str = args.vhost

    def job(ctx: Any) -> JSONValue:
        from .issuance import Issuer

        return Issuer(ctx.api, ctx.store, ctx.settings).reinstall(vhost).summary()  # type: ignore[return-value]

    result = _run(settings, args.user, job)
    expires = _date(result.get("not_after")) if isinstance(result, dict) else "-"
    print(f"Reinstalled the certificate of {vhost} (expires {expires}).")
    return 0


def cmd_ssl_remove(settings: Settings, args: argparse.Namespace) -> int:
    vhost: str = args.vhost

    def job(ctx: Any) -> JSONValue:
        from .issuance import Issuer

        Issuer(ctx.api, ctx.store, ctx.settings).remove(vhost)
        return {"removed": vhost}

    _run(settings, args.user, job)
    print(f"Removed the plugin's certificate from {vhost}.")
    return 0


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="le-cp", description="Let's Encrypt certificates for every site on this cPanel server."
    )
    parser.add_argument("--version", action="version", version=f"le-cp {__version__}")
    top = parser.add_subparsers(dest="area", required=True, metavar="{config,ssl}")

    config = top.add_parser("config", help="show or change settings")
    config_sub = config.add_subparsers(dest="action", required=True)
    p = config_sub.add_parser("list", help="every setting and its value (secrets not shown)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_config_list)
    p = config_sub.add_parser("set", help="change a setting (a secret's value is read from stdin)")
    p.add_argument("key")
    p.add_argument("value", nargs="?")
    p.set_defaults(func=cmd_config_set)

    ssl = top.add_parser("ssl", help="a user's certificates")
    ssl_sub = ssl.add_subparsers(dest="action", required=True)
    p = ssl_sub.add_parser("issue", help="issue and install a certificate for names of one website")
    p.add_argument("--user", required=True)
    p.add_argument("--key-type", choices=KEY_TYPES, default=None)
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=cmd_ssl_issue)
    p = ssl_sub.add_parser("list", help="every website of the user and its certificate")
    p.add_argument("--user", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ssl_list)
    p = ssl_sub.add_parser("reinstall", help="install a website's saved certificate again")
    p.add_argument("--user", required=True)
    p.add_argument("vhost", metavar="VHOST")
    p.set_defaults(func=cmd_ssl_reinstall)
    p = ssl_sub.add_parser("remove", help="remove the plugin's certificate from a website")
    p.add_argument("--user", required=True)
    p.add_argument("vhost", metavar="VHOST")
    p.set_defaults(func=cmd_ssl_remove)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        code: int = args.func(settings, args)
        return code
    except Error as exc:
        print(f"le-cp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("le-cp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
