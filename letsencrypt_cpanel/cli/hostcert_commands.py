"""`le-cp hostcert status|issue|add NAME|remove NAME`: the service (hostname) certificate."""

from __future__ import annotations

import argparse
import json
import time

from ..config import Settings, set_value
from ..errors import Error
from .common import date, require_root, tell_daemon


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    from ..service_cert_state import load_state
    from ..service_certs import service_statuses
    from ..user_jobs import RootSide

    rows = service_statuses(settings, RootSide.build(settings).whm, time.time())
    state = load_state(settings)
    if args.json:
        data = {
            "extra_names": list(settings.hostcert_extra_names),
            "enabled": settings.hostcert_enabled,
            "services": [r.summary() for r in rows],
            "last_attempt": state.last_attempt,
            "last_result": state.last_result,
            "last_error": state.last_error,
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"extra names: {', '.join(settings.hostcert_extra_names) or '-'}")
    print(f"{'SERVICE':10} {'EXPIRES':10} {'ISSUER':28} STATE")
    for r in rows:
        print(f"{r.service:10} {date(r.not_after):10} {r.issuer[:28]:28} {r.problem or 'good'}")
    if state.last_attempt:
        shown = time.strftime("%Y-%m-%d %H:%M", time.gmtime(state.last_attempt))
        print(f"last attempt: {shown} {state.last_result} {state.last_error}".rstrip())
    return 0


def cmd_issue(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    from ..service_certs import FAILED, NOT_DUE, run_once
    from ..user_jobs import RootSide

    # The admin asked: issued even when the daemon's upkeep is off; a good certificate is
    # replaced only with --force.
    outcome = run_once(
        settings, RootSide.build(settings).whm, time.time(), explicit=True, force=args.force
    )
    if args.json:
        print(json.dumps(outcome.summary(), indent=2))
    elif outcome.action in (FAILED, "deferred"):
        raise Error(f"service certificate {outcome.action}: {outcome.error}")
    elif outcome.action == NOT_DUE:
        print(
            f"service certificate not due for {', '.join(outcome.names)}, valid until "
            f"{date(outcome.not_after)}; `le-cp hostcert issue --force` replaces it now"
        )
    else:
        print(
            f"service certificate {outcome.action} for {', '.join(outcome.names)}, valid until "
            f"{date(outcome.not_after)}; installed on {', '.join(outcome.installed_on) or '-'}"
        )
    return 1 if outcome.action in (FAILED, "deferred") else 0


def _change_names(settings: Settings, name: str, add: bool) -> int:
    require_root()
    from ..names import normalize_name

    wanted = normalize_name(name)
    names = [n for n in settings.hostcert_extra_names if n != wanted]
    if add:
        names.append(wanted)
    set_value(settings, "hostcert_extra_names", ",".join(names))
    tell_daemon(settings, f"extra names: {', '.join(names) or '-'}")
    # What happens next, said as service_certs does it: a name missing from the certificate
    # makes it due (while the daemon's upkeep is on); a name too many does not.
    if not add:
        print(
            f"{wanted} stays on the current certificate until it is renewed; "
            "`le-cp hostcert issue --force` replaces it now"
        )
    elif settings.hostcert_enabled:
        print("the daemon adds it at its next cycle; `le-cp hostcert issue` does it now")
    else:
        print(
            "the daemon's upkeep of the certificate is off (`le-cp hostcert enable`); "
            "`le-cp hostcert issue` adds it now"
        )
    return 0


def cmd_enable(settings: Settings, args: argparse.Namespace) -> int:
    on = args.action == "enable"
    set_value(settings, "hostcert_enabled", "true" if on else "false")
    saved = (
        "service certificate enabled: the daemon issues and renews it from its next cycle "
        "(`le-cp hostcert issue` issues it now)"
        if on
        else "service certificate disabled: the daemon leaves it alone"
    )
    tell_daemon(settings, saved)
    return 0


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    return _change_names(settings, args.name, add=True)


def cmd_remove(settings: Settings, args: argparse.Namespace) -> int:
    return _change_names(settings, args.name, add=False)


def register(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hostcert = top.add_parser("hostcert", help="the certificate of cPanel's own services")
    sub = hostcert.add_subparsers(dest="action", required=True)
    p = sub.add_parser("status", help="each service's certificate and what is wrong with it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("issue", help="issue (or renew) and install it on every service now")
    p.add_argument("--force", action="store_true", help="a new certificate even if not due")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_issue)
    for action in ("enable", "disable"):
        p = sub.add_parser(action, help=f"{action} the daemon's issuing and renewing it")
        p.set_defaults(func=cmd_enable)
    p = sub.add_parser("add", help="add an extra name to the service certificate")
    p.add_argument("name")
    p.set_defaults(func=cmd_add)
    p = sub.add_parser("remove", help="remove an extra name")
    p.add_argument("name")
    p.set_defaults(func=cmd_remove)
