"""What the WHM page's action buttons do, each returning an outcome to show.

- renew now for a user: the daemon's own renewal of one user (renewal_root.renew_user_now, a
  worker as the user), recorded, mailed and hooked as a cycle's, so the list shows it at once;
- run AutoSSL now for a user, and issue or renew the service certificate: the daemon's own jobs
  (autossl.py, service_certs.py), called once;
- keep cPanel's AutoSSL off the plugin's websites: WHM add_autossl_user_excluded_domains for the
  names of every certificate the plugin manages.

Heavy modules (acme, workers) are imported inside the functions: the list page never loads them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..cpanel_autossl import exclude_managed, managed_names
from ..errors import Error
from ..report import CertificateRow


@dataclass(frozen=True)
class Outcome:
    ok: bool
    title: str
    lines: tuple[str, ...] = ()
    data: Any = field(default=None)

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "title": self.title, "lines": list(self.lines), "data": self.data}


def renew_user_now(settings: Settings, user: str, *, force: bool = False) -> Outcome:
    """Renew what is due among `user`'s plugin certificates now (all of them with `force`), the
    daemon's way (renewal_root): recorded in root's state, the owner mailed, the hook run."""
    from ..renewal_root import renew_user_now as renew

    try:
        report = renew(settings, user, force=force)
    except Error as exc:
        return Outcome(False, f"Renewal for {user} could not run", (str(exc),))
    lines = []
    for out in report.outcomes:
        text = f"{out.vhost}: {out.action.replace('_', ' ')}"
        if out.not_after:
            text += f" (expires {time.strftime('%Y-%m-%d', time.gmtime(out.not_after))})"
        if out.error:
            text += f": {out.error}"
        lines.append(text)
    if not lines:
        lines.append(f"{user} has no certificates from this plugin.")
    failed = [o for o in report.outcomes if o.action == "failed"]
    title = f"Renewal for {user}: " + (f"{len(failed)} failed" if failed else "done")
    data = [{"vhost": o.vhost, "action": o.action, "error": o.error} for o in report.outcomes]
    return Outcome(not failed, title, tuple(lines), data)


def autossl_user_now(settings: Settings, user: str) -> Outcome:
    """The plugin's AutoSSL for one account now (`le-cp autossl run --user U`)."""
    from ..autossl import FAILED, describe_vhost, run_once

    try:
        result = run_once(settings, time.time(), users=[user], force=True)
    except Error as exc:
        return Outcome(False, f"AutoSSL for {user} could not run", (str(exc),))
    lines: list[str] = []
    for v in result.vhosts:
        lines.append(describe_vhost(v.summary()))
        lines += [f"left off {name}: {reason}" for name, reason in v.skipped]
    lines += [f"the worker failed: {error}" for error in result.worker_failures.values()]
    ok = not result.worker_failures and not result.with_status(FAILED)
    data = [v.summary() for v in result.vhosts]
    return Outcome(ok, f"AutoSSL for {user}: {result.describe()}", tuple(lines), data)


def service_cert_now(settings: Settings, whm: Any, *, force: bool = False) -> Outcome:
    """Issue or renew the service certificate now (`le-cp hostcert issue`), whether or not the
    daemon's upkeep of it is on in Options; `force` orders a new one even when the installed
    one is good."""
    from ..service_certs import DEFERRED, FAILED, run_once

    outcome = run_once(settings, whm, time.time(), explicit=True, force=force)
    ok = outcome.action not in (FAILED, DEFERRED)
    lines = [f"names: {', '.join(outcome.names) or '-'}"]
    if outcome.not_after:
        lines.append(f"valid until {time.strftime('%Y-%m-%d', time.gmtime(outcome.not_after))}")
    if outcome.installed_on:
        lines.append(f"installed on: {', '.join(outcome.installed_on)}")
    if outcome.error:
        lines.append(outcome.error)
    title = f"Service certificate: {outcome.action.replace('_', ' ')}"
    return Outcome(ok, title, tuple(lines), outcome.summary())


def service_statuses(settings: Settings, whm: Any) -> list[dict[str, Any]]:
    """Each service's certificate and what is wrong with it, for the Actions page."""
    from ..service_certs import service_statuses as statuses

    try:
        return [s.summary() for s in statuses(settings, whm, time.time())]
    except Error as exc:
        return [{"service": "-", "problem": str(exc), "names": [], "issuer": "", "not_after": 0}]


def exclude_from_cpanel_autossl(whm: Any, rows: Iterable[CertificateRow]) -> Outcome:
    """Tell cPanel's AutoSSL to leave the names of the plugin's certificates alone, per user
    (WHM add_autossl_user_excluded_domains; `whm` is a WhmAPI)."""
    per_user = managed_names((row.user, row.status, row.names) for row in rows)
    failures = exclude_managed(whm, per_user)
    lines = [
        f"{user}: not excluded: {failures[user]}"
        if user in failures
        else f"{user}: {', '.join(names)}"
        for user, names in sorted(per_user.items())
    ]
    if not per_user:
        lines.append("The plugin manages no certificates yet.")
    ok = not failures
    title = (
        "cPanel's AutoSSL now leaves the plugin's websites alone"
        if ok
        else ("cPanel's AutoSSL could not be kept off every website")
    )
    return Outcome(ok, title, tuple(lines), {u: sorted(set(n)) for u, n in per_user.items()})
