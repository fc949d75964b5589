"""`le-cp daemon status|history|run-now`: what the renewal daemon knows and did, from root's
state alone (no user's file is opened), and a way to start a cycle at once."""

from __future__ import annotations

import argparse
import json
import signal
import time

from ..config import Settings
from ..errors import Error
from .common import date, require_root


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch)) if epoch else "-"


def cmd_daemon_status(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    from ..state import StateDB, daemon_pid

    pid = daemon_pid(settings)
    with StateDB.open(settings) as db:
        rows = db.vhosts()
        users = db.users()
        last_cycle = int(db.meta("last_cycle", "0") or 0)
        last_result = db.meta("last_cycle_result")
    if args.json:
        data = {
            "daemon_pid": pid,
            "last_cycle": last_cycle,
            "last_cycle_result": last_result,
            "vhosts": [
                {
                    "user": r.user,
                    "vhost": r.vhost,
                    "status": r.status,
                    "names": list(r.names),
                    "not_after": r.not_after,
                    "failures": r.failures,
                    "next_attempt": r.next_attempt,
                    "last_error": r.last_error,
                }
                for r in rows
            ],
            "worker_failures": {
                u: {"failures": s.failures, "next_attempt": s.next_attempt, "error": s.last_error}
                for u, s in users.items()
                if s.failures
            },
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"daemon: {'running (pid ' + str(pid) + ')' if pid else 'not running'}")
    print(f"last cycle: {_when(last_cycle)} {last_result}".rstrip())
    print(f"{'USER':16} {'WEBSITE':32} {'STATUS':12} {'EXPIRES':10} RETRY / ERROR")
    for r in rows:
        extra = f"{_when(r.next_attempt)}: {r.last_error}" if r.status == "failed" else ""
        print(f"{r.user:16} {r.vhost:32} {r.status:12} {date(r.not_after):10} {extra}".rstrip())
    for user, s in sorted(users.items()):
        if s.failures:
            print(f"{user:16} {'(worker)':32} {'failed':12} {'-':10} "
                  f"{_when(s.next_attempt)}: {s.last_error}")  # fmt: skip
    return 0


def cmd_daemon_history(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    from ..state import StateDB

    with StateDB.open(settings) as db:
        entries = db.history(limit=args.limit, user=args.user)
    for e in entries:
        print(f"{_when(e.at)} {e.user:16} {e.vhost or '-':32} {e.action:12} {e.detail}".rstrip())
    return 0


def cmd_daemon_run_now(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    from ..daemon_signal import signal_daemon

    sent = signal_daemon(settings, signal.SIGUSR1)
    if sent.pid is None:
        raise Error(
            f"The daemon was not told: {sent.problem}."
            if sent.problem
            else "The daemon is not running; start it (service letsencrypt-cpanel start) "
            "or run one cycle in the foreground with letsencrypt-cpaneld --once."
        )
    print(f"Asked the daemon (pid {sent.pid}) to start a renewal cycle now.")
    return 0


def register(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    daemon = top.add_parser("daemon", help="the renewal daemon: status, history, run now")
    sub = daemon.add_subparsers(dest="action", required=True)
    p = sub.add_parser("status", help="every certificate the daemon looks after, and failures")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_daemon_status)
    p = sub.add_parser("history", help="what the daemon did, newest last")
    p.add_argument("--user", default=None)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_daemon_history)
    p = sub.add_parser("run-now", help="start a renewal cycle now (SIGUSR1 to the daemon)")
    p.set_defaults(func=cmd_daemon_run_now)
