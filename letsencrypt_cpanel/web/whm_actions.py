"""What the WHM page's action buttons do, each returning an outcome to show.

- renew now for a user: the `le-cp ssl renew` path (`RootSide.run_for_user` with
  `user_renewal.renew_user`, in a worker as the user), and the result is recorded in root's
  state as a daemon cycle records it, so the list shows it at once;
- run AutoSSL now for a user, and issue or renew the service certificate: the daemon's own jobs
  (autossl.py, service_certs.py), called once;
- keep cPanel's AutoSSL off the plugin's websites: WHM add_autossl_user_excluded_domains for the
  names of every certificate the plugin manages.

Heavy modules (acme, workers) are imported inside the functions: the list page never loads them.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import Error
from ..report import CertificateRow
from ..state import StateDB


@dataclass(frozen=True)
class Outcome:
    ok: bool
    title: str
    lines: tuple[str, ...] = ()
    data: Any = field(default=None)

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "title": self.title, "lines": list(self.lines), "data": self.data}


def renew_user_now(settings: Settings, user: str, *, force: bool = False) -> Outcome:
    """Renew what is due among `user`'s plugin certificates now (all of them with `force`)."""
    from ..impersonate import JSONValue
    from ..renewal import parse_report
    from ..user_jobs import JobContext, RootSide

    now = time.time()

    def job(ctx: JobContext) -> JSONValue:
        from ..keys import certificate_facts
        from ..user_renewal import renew_user

        outcomes = renew_user(
            ctx.api,
            ctx.store,
            ctx.settings,
            contact_email=ctx.account.email or None,
            force=force,
            now=now,
        )
        record = ctx.store.load()
        rows: list[JSONValue] = []
        for outcome in outcomes:
            row = outcome.summary()
            entry = record.certificates.get(outcome.vhost)
            row["not_before"] = entry.not_before if entry else 0
            try:
                row["issuer"] = (
                    certificate_facts(entry.cert_pem).issuer_common_name if entry else ""
                )
            except (ValueError, TypeError):
                row["issuer"] = ""
            rows.append(row)
        return {"disable_mail": record.disable_mail, "outcomes": rows}

    with StateDB.open(settings) as db:
        try:
            result = RootSide.build(settings).run_for_user(user, job)
            report = parse_report(result)
        except Error as exc:
            db.record_failure(user, str(exc), int(now))
            return Outcome(False, f"Renewal for {user} could not run", (str(exc),))
        db.record_report(user, frozenset(), report, int(now))
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


def _optional(module: str, function: str) -> Any:
    """A function of another part of the plugin, or None in a version without it."""
    try:
        found = importlib.import_module(f"letsencrypt_cpanel.{module}")
    except ImportError:
        return None
    return getattr(found, function, None)


def autossl_user_now(settings: Settings, user: str) -> Outcome:
    run = _optional("autossl", "run_for_user")
    if run is None:
        return Outcome(False, "AutoSSL is not available in this version of the plugin")
    try:
        result = run(settings, user)
    except Error as exc:
        return Outcome(False, f"AutoSSL for {user} could not run", (str(exc),))
    lines = tuple(str(x) for x in getattr(result, "lines", lambda: [str(result)])())
    return Outcome(bool(getattr(result, "ok", True)), f"AutoSSL for {user}: done", lines)


def service_cert_now(settings: Settings, *, force: bool = False) -> Outcome:
    run = _optional("service_certs", "run_now")
    if run is None:
        return Outcome(False, "The service certificate is not available in this version")
    try:
        result = run(settings, force=force)
    except Error as exc:
        return Outcome(False, "The service certificate could not be issued", (str(exc),))
    return Outcome(True, "Service certificate: done", (str(result),))


def exclude_from_cpanel_autossl(whm: Any, rows: Iterable[CertificateRow]) -> Outcome:
    """Tell cPanel's AutoSSL to leave the names of the plugin's certificates alone, per user
    (WHM add_autossl_user_excluded_domains; `whm` is a WhmAPI)."""
    per_user: dict[str, list[str]] = {}
    for row in rows:
        if row.status in ("names_gone", "replaced"):
            continue
        per_user.setdefault(row.user, []).extend(n for n in row.names if not n.startswith("*."))
    lines: list[str] = []
    ok = True
    for user, names in sorted(per_user.items()):
        unique = list(dict.fromkeys(names))
        try:
            whm.add_autossl_user_excluded_domains(user, unique)
            lines.append(f"{user}: {', '.join(unique)}")
        except Error as exc:
            ok = False
            lines.append(f"{user}: not excluded: {exc}")
    if not per_user:
        lines.append("The plugin manages no certificates yet.")
    title = (
        "cPanel's AutoSSL now leaves the plugin's websites alone"
        if ok
        else ("cPanel's AutoSSL could not be kept off every website")
    )
    return Outcome(ok, title, tuple(lines), {u: sorted(set(n)) for u, n in per_user.items()})
