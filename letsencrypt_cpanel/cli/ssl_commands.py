"""`le-cp ssl issue|list|renew|reinstall|remove --user U`: each runs as the user, in a worker.

Root answers the worker's External Account Binding requests over a private socket set up
before the worker starts (root_service.binder_for_worker): the HMAC key never reaches the user.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..config import KEY_TYPES, Settings
from ..errors import Error
from ..impersonate import JSONValue
from .common import date, names_of, require_root

CHALLENGES = ("http-01", "dns-01")
REASONS = (
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
)


def _run(settings: Settings, user: str, job: Any) -> JSONValue:
    """Run `job(ctx, binder)` as `user`, root answering its EAB requests meanwhile."""
    require_root()
    from ..root_service import binder_for_worker
    from ..system_users import lookup_user
    from ..user_jobs import RootSide

    root = RootSide.build(settings)
    with binder_for_worker(settings, lookup_user(settings, user).uid) as binder:
        return root.run_for_user(user, lambda ctx: job(ctx, binder))


def _issuer(ctx: Any, binder: Any) -> Any:
    from ..issuance import Issuer

    return Issuer(
        ctx.api, ctx.store, ctx.settings, contact_email=ctx.account.email or None, binder=binder
    )


def cmd_ssl_issue(settings: Settings, args: argparse.Namespace) -> int:
    names: list[str] = list(args.names)
    key_type: str | None = args.key_type
    options = {
        "challenge": args.challenge or "",
        "directory": args.directory or "",
        "preferred_chain": args.preferred_chain,
        "dry_run": bool(args.dry_run),
    }
    if options["directory"]:
        from ..config import validate

        validate("acme_directory", options["directory"])

    def job(ctx: Any, binder: Any) -> JSONValue:
        return _issuer(ctx, binder).issue(names, key_type, **options).summary()  # type: ignore[no-any-return]

    from ..keys import prefetch_private_key

    # The key is made on the other core while root asks WHM for the user's session; the worker
    # (a fork of this process) takes it. Root writes it nowhere: only the worker saves it.
    prefetch_private_key(key_type or settings.default_key_type)
    result = _run(settings, args.user, job)
    if not isinstance(result, dict):
        raise Error("the worker sent back an unexpected summary")
    shown = names_of(result)
    how = f" with {result.get('challenge_method')}" if result.get("challenge_method") else ""
    if result.get("dry_run"):
        print(
            f"Dry run: the staging CA issued a certificate for {shown}{how}; nothing was saved "
            "or installed."
        )
        return 0
    what = (
        "Installed the saved certificate"
        if result.get("reused_saved")
        else f"Issued{how} and installed a certificate"
    )
    print(f"{what} for {shown} (expires {date(result.get('not_after'))}).")
    return 0


def cmd_ssl_list(settings: Settings, args: argparse.Namespace) -> int:
    def job(ctx: Any, _binder: Any) -> JSONValue:
        from ..certificates import statuses

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
        names = names_of(row)
        managed = "yes" if row.get("managed") else "-"
        print(f"{row.get('vhost')!s:32} {managed:6} {row.get('label')!s:36} {names}")
    return 0


def cmd_ssl_reinstall(settings: Settings, args: argparse.Namespace) -> int:
    vhost: str = args.vhost

    def job(ctx: Any, binder: Any) -> JSONValue:
        return _issuer(ctx, binder).reinstall(vhost).summary()  # type: ignore[no-any-return]

    result = _run(settings, args.user, job)
    expires = date(result.get("not_after")) if isinstance(result, dict) else "-"
    print(f"Reinstalled the certificate of {vhost} (expires {expires}).")
    return 0


def cmd_ssl_remove(settings: Settings, args: argparse.Namespace) -> int:
    vhost: str = args.vhost
    revoke: bool = args.revoke or args.reason is not None
    reason: str = args.reason or "unspecified"

    def job(ctx: Any, binder: Any) -> JSONValue:
        _issuer(ctx, binder).remove(vhost, revoke=revoke, reason=reason)
        return {"removed": vhost, "revoked": revoke}

    _run(settings, args.user, job)
    if revoke:
        print(f"Revoked ({reason}) and removed the plugin's certificate from {vhost}.")
    else:
        print(f"Removed the plugin's certificate from {vhost}.")
    return 0


def cmd_ssl_renew(settings: Settings, args: argparse.Namespace) -> int:
    """The daemon's renewal of one user (renewal_root): recorded in root's state, the owner
    mailed, the post-renewal hook run; root answers the worker's EAB requests meanwhile."""
    require_root()
    from ..renewal_root import renew_user_now
    from ..root_service import binder_for_worker
    from ..system_users import lookup_user

    with binder_for_worker(settings, lookup_user(settings, args.user).uid) as binder:
        report = renew_user_now(
            settings, args.user, force=args.force, only=args.vhost, binder=binder
        )
    failed = 0
    for out in report.outcomes:
        line = f"{out.vhost}: {out.action.replace('_', ' ')}"
        if out.action in ("renewed", "reinstalled", "not_due"):
            line += f" (expires {date(out.not_after)})"
        if out.error:
            failed += 1
            line += f": {out.error}"
        print(line)
    if not report.outcomes:
        print(f"{args.user} has no certificates from this plugin.")
    return 1 if failed else 0


def register(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ssl = top.add_parser("ssl", help="a user's certificates")
    ssl_sub = ssl.add_subparsers(dest="action", required=True)
    p = ssl_sub.add_parser("issue", help="issue and install a certificate for names of one website")
    p.add_argument("--user", required=True)
    p.add_argument("--key-type", choices=KEY_TYPES, default=None)
    p.add_argument(
        "--challenge",
        choices=CHALLENGES,
        default=None,
        help="how names are validated (default: http-01; dns-01 for wildcards, or when the "
        "site does not answer and the zone is on this server); remembered for renewals",
    )
    p.add_argument(
        "--directory", default=None, help="the ACME CA's directory URL (remembered for renewals)"
    )
    p.add_argument(
        "--preferred-chain",
        default=None,
        metavar="ROOT_CN",
        help="install the chain to the root with this common name, when the CA offers several",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="issue from the staging CA (setting staging_directory); install and save nothing",
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="names of one website; *.NAME too")
    p.set_defaults(func=cmd_ssl_issue)
    p = ssl_sub.add_parser("list", help="every website of the user and its certificate")
    p.add_argument("--user", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ssl_list)
    p = ssl_sub.add_parser("reinstall", help="install a website's saved certificate again")
    p.add_argument("--user", required=True)
    p.add_argument("vhost", metavar="VHOST")
    p.set_defaults(func=cmd_ssl_reinstall)
    p = ssl_sub.add_parser("renew", help="renew the user's certificates that are due now")
    p.add_argument("--user", required=True)
    p.add_argument("--force", action="store_true", help="renew even what is not due")
    p.add_argument("--vhost", default=None, help="only this website")
    p.set_defaults(func=cmd_ssl_renew)
    p = ssl_sub.add_parser("remove", help="remove the plugin's certificate from a website")
    p.add_argument("--user", required=True)
    p.add_argument("--revoke", action="store_true", help="revoke it at the CA first")
    p.add_argument("--reason", choices=REASONS, default=None, help="revocation reason (RFC 5280)")
    p.add_argument("vhost", metavar="VHOST")
    p.set_defaults(func=cmd_ssl_remove)
