"""The WHM page's views. Each takes the `WhmContext` and answers HTML or JSON alike.

Views are thin: the report, options and actions live in report.py, whm_options.py and
whm_actions.py. Access was decided before any view runs (whm.py); views that change or reveal
server-wide things call `ctx.access.require_full()` again, so a new route cannot forget it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..config import KEY_TYPES, Settings
from ..errors import Error
from ..report import (
    SORT_KEYS,
    ServerReport,
    autossl_reasons,
    build_report,
    expiry_weeks,
    select_rows,
)
from ..state import StateDB
from . import whm_actions, whm_options
from .error_advice import PageError
from .rendering import render
from .responses import Request, Response, json_response, redirect
from .whm_access import Access, WhmCsrf
from .whm_chart import build_chart

STATUS_FILTER_LABELS = {
    "": "Any result",
    "failed": "Last renewal failed",
    "ok": "Renewed or not due",
    "not_installed": "Not installed now",
    "expiring": "Expiring within 30 days",
}
SORT_LABELS = {
    "expiry": "Expiry",
    "user": "User",
    "vhost": "Website",
    "issuer": "Issuer",
    "key": "Key type",
    "attempt": "Last attempt",
    "result": "Result",
}


@dataclass
class WhmContext:
    request: Request
    settings: Settings
    access: Access
    csrf: WhmCsrf
    page_url: str
    templates: Path
    nonce: str
    whm_factory: Callable[[Settings], Any]
    _whm: Any = field(default=None, repr=False)

    @property
    def whm(self) -> Any:
        if self._whm is None:
            self._whm = self.whm_factory(self.settings)
        return self._whm

    def url(self, action: str = "", **params: str) -> str:
        query = {"action": action, **params} if action else dict(params)
        query = {k: v for k, v in query.items() if v}
        return self.page_url + ("?" + urlencode(query) if query else "")

    def html(self, template: str, http_status: int = 200, **context: Any) -> Response:
        base = {
            "whm": self,
            "user": self.access.user,
            "full": self.access.full,
            "csrf_token": self.csrf.token(),
            "nonce": self.nonce,
            "now": time.time(),
        }
        body = render(self.templates, template, {**base, **context})
        return Response(http_status, body.encode("utf-8"), nonce=self.nonce)

    def visible_users(self) -> list[str] | None:
        """None: every account (full access); else the accounts this reseller owns."""
        if self.access.full:
            return None
        return sorted(a.user for a in self.whm.listaccts() if a.owner == self.access.user)


def _report(ctx: WhmContext) -> ServerReport:
    reasons = autossl_reasons(ctx.settings)
    with StateDB.open(ctx.settings) as db:
        return build_report(ctx.whm, db, users=ctx.visible_users(), reasons=reasons)


def _cpanel_autossl(ctx: WhmContext) -> dict[str, Any]:
    """Whether cPanel's own AutoSSL is on (one provider enabled), for the coexistence notice."""
    try:
        providers = ctx.whm.get_autossl_providers()
    except Error as exc:
        return {"known": False, "enabled": False, "provider": "", "error": str(exc)}
    on = [p for p in providers if p.enabled]
    name = on[0].display_name if on else ""
    return {"known": True, "enabled": bool(on), "provider": name, "error": ""}


def _deferred(ctx: WhmContext) -> list[dict[str, Any]]:
    """Work the rate-limit budgets deferred (budgets.py), when this version has them."""
    try:
        from ..budgets import Budgets
    except ImportError:
        return []
    try:
        with Budgets.open(ctx.settings) as budgets:
            rows = budgets.deferred()
    except (Error, sqlite3.Error):
        return []
    keep = ctx.visible_users()
    return [
        {"user": d.user, "vhost": d.vhost, "reason": d.reason, "since": d.since, "until": d.until}
        for d in rows
        if keep is None or d.user in keep
    ]


BUDGET_ROWS = 10


def _budgets(ctx: WhmContext) -> dict[str, Any] | None:
    """The rate-limit budgets' fullest keys and the CA's pauses (`le-cp budgets`), for root and
    `all` resellers only: the keys name every account's names."""
    if not ctx.access.full:
        return None
    from ..budgets import Budgets

    now = time.time()
    try:
        with Budgets.open(ctx.settings) as budgets:
            limits, used, paused = budgets.limits, budgets.usage(now), budgets.pauses(now)
    except (Error, sqlite3.Error):  # a broken budget file must not take the page down
        return None
    return {
        "used": [
            {"kind": k, "key": key, "used": n, "limit": limits[k].count}
            for k, key, n in used[:BUDGET_ROWS]
        ],
        "more": max(0, len(used) - BUDGET_ROWS),
        "paused": [{"kind": k, "key": key, "until": u, "detail": d} for k, key, u, d in paused],
    }


def home(ctx: WhmContext) -> Response:
    q = ctx.request
    report = _report(ctx)
    sort = q.value("sort") if q.value("sort") in SORT_KEYS else "expiry"
    descending = q.value("order") == "desc"
    status = q.value("status") if q.value("status") in STATUS_FILTER_LABELS else ""
    text = q.value("q")[:200]
    rows = select_rows(report.certificates, text=text, status=status, sort=sort,
                       descending=descending, now=report.generated)  # fmt: skip
    needle = text.strip().lower()
    uncovered = [
        u for u in report.uncovered
        if not needle or needle in " ".join([u.user, u.vhost, *u.names]).lower()
    ]  # fmt: skip
    weeks = expiry_weeks(report.certificates, report.generated)
    cpanel_autossl = _cpanel_autossl(ctx) if ctx.access.full else None
    deferred = _deferred(ctx)
    budgets = _budgets(ctx)
    if q.wants_json:
        data = report.summary()
        data.update(
            certificates=[r.summary() for r in rows],
            uncovered=[u.summary() for u in uncovered],
            user=ctx.access.user,
            full_access=ctx.access.full,
            csrf_token=ctx.csrf.token(),
            cpanel_autossl=cpanel_autossl,
            deferred=deferred,
            budgets=budgets,
        )
        return json_response(200, success=True, data=data)
    return ctx.html(
        "whm/home.html",
        tab="home",
        report=report,
        rows=rows,
        uncovered=uncovered,
        chart=build_chart(weeks),
        sort=sort,
        descending=descending,
        status=status,
        text=text,
        sort_labels=SORT_LABELS,
        status_labels=STATUS_FILTER_LABELS,
        cpanel_autossl=cpanel_autossl,
        deferred=deferred,
        budgets=budgets,
        exclude_managed=ctx.settings.cpanel_autossl_exclude_managed,
    )


def options_form(ctx: WhmContext, errors: list[str] | None = None, status: int = 200) -> Response:
    ctx.access.require_full()
    values = whm_options.current_values(ctx.settings)
    if ctx.request.wants_json and not errors:
        data = {"options": values, "csrf_token": ctx.csrf.token()}
        return json_response(200, success=True, data=data)
    saved = ctx.request.value("saved")
    return ctx.html(
        "whm/options.html",
        http_status=status,
        tab="options",
        options=whm_options.available(ctx.settings),
        values=values,
        errors=errors or [],
        key_types=KEY_TYPES,
        directory_choice=whm_options.directory_choice(ctx.settings.acme_directory),
        directories=whm_options.DIRECTORIES,
        message=_saved_message(saved),
    )


def _saved_message(saved: str) -> dict[str, str] | None:
    if saved == "hup":
        return {"kind": "success", "text": "Saved. The daemon rereads the options now."}
    if saved == "down":
        text = "Saved. The daemon is not running; it reads the options when it starts."
        return {"kind": "info", "text": text}
    if saved == "same":
        return {"kind": "info", "text": "Nothing changed."}
    return None


def save_options(ctx: WhmContext) -> Response:
    ctx.access.require_full()
    req = ctx.request

    def get(name: str) -> str | None:
        found = req.values(name)
        return "\n".join(found) if found else None

    whole_form = req.json_body is None and req.value("form") == "options"
    changes, errors = whm_options.parse_changes(ctx.settings, get, whole_form=whole_form)
    if errors:
        if req.wants_json:
            return json_response(400, success=False, errors=errors)
        return options_form(ctx, errors, status=400)
    whm_options.save_changes(ctx.settings, changes)
    pid = whm_options.tell_daemon(ctx.settings) if changes else None
    excluded = None
    if changes.get("cpanel_autossl_exclude_managed", "").lower() in ("true", "1", "on", "yes"):
        # Turned on: keep cPanel's AutoSSL off the plugin's websites at once.
        excluded = whm_actions.exclude_from_cpanel_autossl(ctx.whm, _report(ctx).certificates)
    if req.wants_json:
        data: dict[str, Any] = {"changed": sorted(changes), "daemon_pid": pid}
        if excluded is not None:
            data["cpanel_autossl_excluded"] = excluded.summary()
        return json_response(200, success=True, data=data)
    if excluded is not None:
        return _show(ctx, excluded)
    saved = "same" if not changes else ("hup" if pid else "down")
    return redirect(ctx.url("options", saved=saved))


def actions_page(ctx: WhmContext) -> Response:
    ctx.access.require_full()
    users = sorted(a.user for a in ctx.whm.listaccts())
    services = whm_actions.service_statuses(ctx.settings, ctx.whm)
    if ctx.request.wants_json:
        data = {"users": users, "services": services, "csrf_token": ctx.csrf.token()}
        return json_response(200, success=True, data=data)
    return ctx.html("whm/actions.html", tab="actions", users=users, services=services)


def _account(ctx: WhmContext) -> str:
    user = ctx.request.value("user", "username").strip()
    if not user:
        raise PageError(400, "Choose an account.")
    if user not in {a.user for a in ctx.whm.listaccts()}:
        raise PageError(400, f"There is no account {user!r} on this server.")
    return user


def _show(ctx: WhmContext, outcome: whm_actions.Outcome) -> Response:
    status = 200 if outcome.ok else 502
    if ctx.request.wants_json:
        errors = [] if outcome.ok else [outcome.title, *outcome.lines]
        return json_response(status, success=outcome.ok, data=outcome.summary(), errors=errors)
    return ctx.html("whm/outcome.html", http_status=status, tab="actions", outcome=outcome)


def renew(ctx: WhmContext) -> Response:
    ctx.access.require_full()
    force = ctx.request.value("force") in ("1", "true", "on")
    return _show(ctx, whm_actions.renew_user_now(ctx.settings, _account(ctx), force=force))


def autossl(ctx: WhmContext) -> Response:
    ctx.access.require_full()
    return _show(ctx, whm_actions.autossl_user_now(ctx.settings, _account(ctx)))


def service_cert(ctx: WhmContext) -> Response:
    ctx.access.require_full()
    force = ctx.request.value("force") in ("1", "true", "on")
    return _show(ctx, whm_actions.service_cert_now(ctx.settings, ctx.whm, force=force))


def exclude_cpanel_autossl(ctx: WhmContext) -> Response:
    ctx.access.require_full()
    report = _report(ctx)
    return _show(ctx, whm_actions.exclude_from_cpanel_autossl(ctx.whm, report.certificates))
