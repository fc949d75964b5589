"""`le-cp report [--json]`: the server-wide certificate report the WHM page shows."""

from __future__ import annotations

import argparse
import json

from ..config import Settings
from .common import date, require_root

STATUS_CHOICES = ("", "failed", "ok", "not_installed", "expiring")
SORT_CHOICES = ("expiry", "user", "vhost", "issuer", "key", "attempt", "result")


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    # Light on purpose (no acme): WHM's answers and root's state only.
    from ..config import load_secrets
    from ..cpanel.https import build_whm_api
    from ..cpanel.tls import load_pinned_tls
    from ..report import autossl_reasons, build_report, expiry_weeks, select_rows
    from ..state import StateDB

    whm = build_whm_api(settings, load_secrets(settings), load_pinned_tls(settings))
    with StateDB.open(settings) as db:
        report = build_report(
            whm, db, users=[args.user] if args.user else None, reasons=autossl_reasons(settings)
        )
    rows = select_rows(report.certificates, text=args.search, status=args.status, sort=args.sort)
    if args.json:
        data = report.summary()
        data["certificates"] = [r.summary() for r in rows]
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    print(f"Certificates from this plugin: {len(rows)}")
    print(f"{'USER':12} {'WEBSITE':32} {'EXPIRES':10} {'KEY':11} {'ISSUER':16} LAST RESULT")
    for r in rows:
        print(
            f"{r.user:12} {r.vhost:32} {date(r.not_after):10} {r.key_type or '-':11} "
            f"{r.issuer or '-':16} {date(r.last_attempt)} {r.result}"
        )
    print()
    print(f"Websites with no valid certificate: {len(report.uncovered)}")
    for u in report.uncovered:
        print(f"{u.user:12} {u.domain:32} {u.reason}")
    print()
    print("Expiring per week (failed last renewal):")
    for week in expiry_weeks(report.certificates, report.generated):
        print(f"  from {date(week.start)}: {week.total} ({week.failed})")
    for note in report.notes:
        print(f"Note: {note}")
    return 0


def register(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = top.add_parser("report", help="every plugin certificate and every website without one")
    p.add_argument("--json", action="store_true")
    p.add_argument("--user", default="", help="only this account")
    p.add_argument("--search", default="", help="only rows whose user, vhost or names hold this")
    p.add_argument("--status", default="", choices=STATUS_CHOICES)
    p.add_argument("--sort", default="expiry", choices=SORT_CHOICES)
    p.set_defaults(func=cmd_report)
