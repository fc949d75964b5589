"""python -m cpanel_sandbox: init, add-user, populate, login, serve."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cpanel_sandbox import accounts, layout, sessions, whm


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cpanel_sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="lay down a cPanel server's files under ROOT")
    init.add_argument("root", type=Path)

    add = sub.add_parser("add-user", help="create an account in cPanel's formats")
    add.add_argument("root", type=Path)
    add.add_argument("user")
    add.add_argument("--domain", required=True)
    add.add_argument("--addon", action="append", default=[])
    add.add_argument("--sub", action="append", default=[], help="full name: blog.example.com")
    add.add_argument("--parked", action="append", default=[])
    add.add_argument("--email")
    add.add_argument("--owner", default="root")
    add.add_argument("--plan", default="default")

    pop = sub.add_parser("populate", help="add many accounts at once (big sandboxes, benchmarks)")
    pop.add_argument("root", type=Path)
    pop.add_argument("--users", type=int, required=True)
    pop.add_argument("--vhosts", type=int, required=True, help="in all: main + addons, spread")
    pop.add_argument("--certs", action="store_true", help="a plugin certificate on every vhost")
    pop.add_argument("--due", type=int, default=0, help="this many certificates due for renewal")
    pop.add_argument("--prefix", default="u", help="user names: PREFIX0001, PREFIX0002, ...")
    pop.add_argument("--owner", default="root")
    pop.add_argument("--directory", help="ACME directory URL recorded with the certificates")
    pop.add_argument("--processes", type=int, help="writer processes (default: one per core)")

    login = sub.add_parser("login", help="print a URL that logs a browser into a session")
    login.add_argument("root", type=Path)
    login.add_argument("user")
    login.add_argument("--service", choices=["cpaneld", "whostmgrd"], default="cpaneld")

    serve = sub.add_parser("serve", help="run the sandbox's servers")
    serve.add_argument("root", type=Path)
    serve.add_argument("--http-port", type=int, default=5002)
    serve.add_argument("--https-port", type=int)
    serve.add_argument("--cpanel-port", type=int)
    serve.add_argument("--whm-port", type=int)
    serve.add_argument("--challtestsrv")
    return parser


def _serving(root: Path) -> bool:
    config = layout.sandbox_config(root)
    pid = config.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _login(root: Path, user: str, service: str) -> int:
    if not _serving(root):
        print(
            f"The sandbox at {root} is not serving (no live pid in {layout.sandbox_json(root)}); "
            "start it with: python -m cpanel_sandbox serve ROOT",
            file=sys.stderr,
        )
        return 1
    if service == "whostmgrd":
        known = user == "root" or user in whm.resellers(root)
    else:
        known = accounts.user_exists(root, user)
    if not known:
        print(
            f"No such {'WHM' if service == 'whostmgrd' else 'cPanel'} user: {user}", file=sys.stderr
        )
        return 1
    print(sessions.create(root, user, service)["url"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = args.root.absolute()
    try:
        if args.command == "init":
            print(accounts.init_root(root))
        elif args.command == "add-user":
            accounts.add_user(
                root,
                args.user,
                args.domain,
                addons=args.addon,
                subs=args.sub,
                parked=args.parked,
                email=args.email,
                owner=args.owner,
                plan=args.plan,
            )
        elif args.command == "populate":
            from cpanel_sandbox import populate

            done = populate.populate(
                root,
                args.users,
                args.vhosts,
                with_certs=args.certs,
                due=args.due,
                prefix=args.prefix,
                owner=args.owner,
                directory=args.directory or populate.DEFAULT_DIRECTORY,
                processes=args.processes,
            )
            print(
                f"{len(done.users)} users, {done.vhosts} vhosts, {done.certificates} certificates "
                f"({done.due} due) in {done.seconds:.1f} s"
            )
        elif args.command == "login":
            return _login(root, args.user, args.service)
        elif args.command == "serve":
            from cpanel_sandbox import server  # the servers load only when serving

            server.serve(
                root,
                http_port=args.http_port,
                https_port=args.https_port,
                cpanel_port=args.cpanel_port,
                whm_port=args.whm_port,
                challtestsrv=args.challtestsrv,
            )
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
