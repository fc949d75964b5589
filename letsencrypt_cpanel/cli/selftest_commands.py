"""`le-cp self-test`: is this installation able to work? One OK/FAIL line per check, with why.

Checks, in order (a later one may need what an earlier one found):
config (both files readable, the secrets file root-only), the ACME directory (reachable, is a
directory), the clock (against the CA's `Date` header: a skewed clock makes the CA refuse
requests), loopback TLS (cpsrvd's certificate is cPanel's service certificate we pin), the WHM API
(answers with the stored token), the daemon (its pid file names a live letsencrypt-cpaneld).
Exit status 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

from ..config import Settings, load_secrets, load_settings
from ..errors import ConfigError, Error
from .common import require_root

# Let's Encrypt rejects JWS whose time is far off; a few minutes of skew is harmless.
MAX_CLOCK_SKEW = 300.0
TIMEOUT = 15.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Findings:
    """What one check learns for a later one (the CA's clock, the pinned certificate)."""

    config_broken: bool = False
    acme_date: float | None = None
    acme_error: str = ""
    tls_ok: bool = False
    checks: list[Check] = field(default_factory=list)


def check_config(settings: Settings, found: Findings) -> str:
    try:
        load_settings({"LECP_ROOT": str(settings.root)})
        load_secrets(settings)
    except ConfigError:
        # The other checks would only test the defaults (and call Let's Encrypt): skip them.
        found.config_broken = True
        raise
    mode = settings.secrets_file.stat().st_mode & 0o777 if settings.secrets_file.exists() else 0
    if mode & 0o077:
        raise Error(f"{settings.secrets_file} is mode {mode:04o}: make it 0600 (it holds secrets)")
    return f"{settings.config_file} and {settings.secrets_file} are readable"


def check_acme(settings: Settings, found: Findings) -> str:
    import requests  # heavy: only for this command

    verify: str | bool = settings.acme_ca_bundle or True
    try:
        reply = requests.get(settings.acme_directory, timeout=TIMEOUT, verify=verify)
    except requests.RequestException as exc:
        found.acme_error = f"{settings.acme_directory} is unreachable"
        raise Error(f"{found.acme_error}: {type(exc).__name__}") from exc
    date = reply.headers.get("Date")
    if date:
        try:
            found.acme_date = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            found.acme_error = f"the CA sent a Date header that is not a date: {date[:40]!r}"
    if reply.status_code != 200:
        raise Error(f"{settings.acme_directory} answered HTTP {reply.status_code}")
    try:
        directory = reply.json()
    except ValueError as exc:
        raise Error(f"{settings.acme_directory} did not answer JSON") from exc
    if not isinstance(directory, dict) or "newOrder" not in directory:
        raise Error(f"{settings.acme_directory} is not an ACME directory (no newOrder)")
    return f"{settings.acme_directory} answers"


def check_clock(settings: Settings, found: Findings) -> str:
    if found.acme_date is None:
        raise Error(f"nothing to compare with: {found.acme_error or 'the CA sent no Date header'}")
    skew = time.time() - found.acme_date
    if abs(skew) > MAX_CLOCK_SKEW:
        way = "ahead of" if skew > 0 else "behind"
        raise Error(f"this server's clock is {abs(skew):.0f} s {way} the CA's: set up NTP")
    return f"within {abs(skew):.0f} s of the CA's"


def check_loopback_tls(settings: Settings, found: Findings) -> str:
    from ..cpanel import load_pinned_tls
    from ..cpanel.tls import is_verification_failure

    tls = load_pinned_tls(settings)
    where = f"{settings.cpanel_host}:{settings.whm_port}"
    try:
        with socket.create_connection((settings.cpanel_host, settings.whm_port), TIMEOUT) as raw:
            with tls.ssl_context().wrap_socket(raw):
                pass
    except OSError as exc:
        if is_verification_failure(exc):
            raise Error(
                f"the certificate on {where} is not cPanel's service certificate "
                f"({settings.cpanel_service_pem}); root's WHM token would not be sent to it"
            ) from exc
        raise Error(f"cannot connect to WHM on {where}: {exc.strerror or exc}") from exc
    found.tls_ok = True
    return f"{where} presents cPanel's service certificate (pinned and verified)"


def check_whm(settings: Settings, found: Findings) -> str:
    from ..cpanel import build_whm_api, load_pinned_tls

    secrets = load_secrets(settings)
    if not secrets.whm_token:
        raise Error(f"no WHM API token in {settings.secrets_file}: run install.sh again")
    if not found.tls_ok:
        raise Error("not tried: loopback TLS failed (the token is never sent unpinned)")
    hostname = build_whm_api(settings, secrets, load_pinned_tls(settings)).gethostname()
    return f"WHM answers with the stored token (hostname {hostname})"


def check_daemon(settings: Settings, found: Findings) -> str:
    path = settings.daemon_pid_file
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except FileNotFoundError as exc:
        raise Error(f"not running: no pid file {path}") from exc
    except (OSError, ValueError) as exc:
        raise Error(f"{path} does not hold a process id") from exc
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError as exc:
        raise Error(f"not running: pid {pid} from {path} is gone (a stale pid file)") from exc
    if b"letsencrypt-cpaneld" not in cmdline:
        raise Error(f"pid {pid} from {path} is another program (a stale pid file)")
    return f"running (pid {pid})"


CHECKS: list[tuple[str, Callable[[Settings, Findings], str]]] = [
    ("config", check_config),
    ("acme directory", check_acme),
    ("clock", check_clock),
    ("loopback tls", check_loopback_tls),
    ("whm api", check_whm),
    ("daemon", check_daemon),
]


def run_checks(settings: Settings) -> list[Check]:
    found = Findings()
    for name, check in CHECKS:
        if found.config_broken:
            found.checks.append(Check(name, False, "not tried: the config could not be read"))
            continue
        try:
            found.checks.append(Check(name, True, check(settings, found)))
        except (Error, OSError, ssl.SSLError) as exc:
            found.checks.append(Check(name, False, str(exc)))
    return found.checks


def cmd_self_test(settings: Settings, args: argparse.Namespace) -> int:
    require_root()
    checks = run_checks(settings)
    if args.json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"{'OK  ' if c.ok else 'FAIL'} {c.name.ljust(width)}  {c.detail}")
    return 0 if all(c.ok for c in checks) else 1


def register(top: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = top.add_parser("self-test", help="check that this installation can work (OK/FAIL a line)")
    p.add_argument("--json", action="store_true")
    # A broken config must give a FAIL line here, not stop le-cp before the checks run.
    p.set_defaults(func=cmd_self_test, tolerates_bad_config=True)
