"""The views of the cPanel page: Home, Issue, View, Reinstall, Remove, progress (the Issue form
is in cpanel_issue_form.py, Settings in cpanel_settings.py).

Each takes the request's `PageContext` and answers HTML or, when the client accepts JSON, the
JSON API's `{"success", "errors", "data"}`. Work that can fail at the CA or in cPanel runs under
the page's busy lock (one at a time per user: a second click answers 409); in HTML its outcome is
left as a one-time message and the browser is redirected (a refresh never repeats a POST).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..certificates import host_for, statuses
from ..config import KEY_TYPES
from ..cpanel.models import Vhost
from ..errors import Error, NameRefused
from ..names import is_wildcard, normalize_name, wildcard_base
from ..record_format import CertificateEntry
from . import one_time_message
from .cpanel_context import PageContext, PageIssuer
from .error_advice import PageError, json_failure, message_for
from .progress import BUSY_LOCK, ProgressFile
from .rendering import format_date, render
from .responses import Response, json_response, redirect

KEY_TYPE_LABELS = {
    "rsa:2048": "RSA 2048 bits (works everywhere)",
    "rsa:4096": "RSA 4096 bits",
    "ecdsa:p-256": "ECDSA P-256 (smaller, faster)",
    "ecdsa:p-384": "ECDSA P-384",
}
# "" is Automatic: http-01, or dns-01 for a wildcard or when the site does not answer http-01
# and its zone is on this server (issue_plan.OrderPlan).
CHALLENGE_LABELS = {
    "": "Automatic",
    "http-01": "HTTP (http-01)",
    "dns-01": "DNS (dns-01)",
}
_CHALLENGE_ALIASES = {"auto": "", "automatic": "", "http": "http-01", "dns": "dns-01"}
REVOCATION_REASON_LABELS = {
    "unspecified": "No particular reason",
    "keyCompromise": "The private key was exposed or stolen (key compromise)",
    "affiliationChanged": "The website's owner or details changed (affiliation changed)",
    "superseded": "Replaced by another certificate (superseded)",
    "cessationOfOperation": "The website is closed or the names are no longer used",
}
KIND_LABELS = {"main": "Main domain", "addon": "Addon domain", "sub": "Subdomain"}
TRUE_WORDS = ("1", "on", "true", "yes")

HOME_TEMPLATE = "cpanel/home.html"


def _entry(ctx: PageContext, vhost: Vhost) -> CertificateEntry:
    entry = ctx.record()[0].certificates.get(vhost.domain)
    if entry is None or not entry.cert_pem:
        raise PageError(
            404,
            f"{vhost.domain} has no certificate from this plugin. Use Issue to get one.",
        )
    return entry


def succeeded(ctx: PageContext, data: Any, text: str, back: str = "") -> Response:
    if ctx.wants_json:
        return json_response(200, success=True, data=data)
    one_time_message.leave(ctx.nvdata, "success", text)
    return redirect(back or ctx.url())


def _busy_work(
    ctx: PageContext, vhost: Vhost, back: str, work: Callable[[PageIssuer], Response]
) -> Response:
    """Run `work(issuer)` under the busy lock; a library failure becomes the JSON
    error with its status, or a one-time message on the page at `back`."""
    with ctx.nvdata.exclusive(BUSY_LOCK) as free:
        if not free:
            raise PageError(
                409,
                "Another certificate of this account is being issued or changed right now. "
                "Wait for it to finish (usually under a minute), then try again.",
            )
        progress = ProgressFile(ctx.nvdata)
        progress.start(vhost.domain)
        try:
            contact = _contact_email(ctx)
            issuer = ctx.issuer_factory(ctx.api, ctx.store, ctx.settings, contact, progress.step)
            response = work(issuer)
        except Error as exc:
            progress.step("failed")
            if ctx.wants_json:
                return json_failure(exc)
            one_time_message.leave(ctx.nvdata, "error", message_for(exc))
            return redirect(back)
        except BaseException:
            progress.step("failed")  # never leave the page saying it is still working
            raise
        progress.step("done")
        return response


def _contact_email(ctx: PageContext) -> str | None:
    if not ctx.settings.contact_email_for_account:
        return None
    info = ctx.api.get_user_information("contact_email")
    return str(info.get("contact_email") or "") or None


# ---- GET ------------------------------------------------------------------------------------


def home(ctx: PageContext) -> Response:
    record, warning = ctx.record()
    rows = statuses(
        ctx.vhosts(),
        ctx.api.installed_hosts(),
        record,
        renewal_fraction=ctx.settings.renewal_fraction,
    )
    if ctx.wants_json:
        return json_response(
            200,
            success=True,
            data={
                "virtual_hosts": [row.summary() for row in rows],
                "send_success_mail": not record.disable_mail,
                "csrf_token": ctx.csrf.token(),
            },
            errors=[warning] if warning else [],
        )
    return ctx.render(
        HOME_TEMPLATE,
        rows=rows,
        kinds=KIND_LABELS,
        warning=warning,
        message=one_time_message.take(ctx.nvdata),
    )


def view(ctx: PageContext) -> Response:
    # cryptography's certificate parsing is fine here; Home never comes this way.
    from ..keys import certificate_facts

    vhost = ctx.vhost()
    entry = ctx.record()[0].certificates.get(vhost.domain)
    host = host_for(vhost, ctx.api.installed_hosts())
    if entry is not None and entry.cert_pem:
        cert_pem, chain_pem, source = entry.cert_pem, entry.chain_pem, "plugin"
    elif host is not None and host.certificate_pem:
        cert_pem, chain_pem, source = host.certificate_pem, "", "cpanel"
    else:
        raise PageError(404, f"{vhost.domain} has no certificate yet. Use Issue to get one.")
    try:
        facts = certificate_facts(cert_pem)
    except ValueError as exc:
        raise PageError(500, f"The certificate of {vhost.domain} cannot be read: {exc}") from exc
    if ctx.wants_json:
        data = {
            "vhost": vhost.domain,
            "source": source,
            "names": list(facts.names),
            "issuer": facts.issuer_organization or facts.issuer_common_name,
            "not_before": int(facts.not_before.timestamp()),
            "not_after": int(facts.not_after.timestamp()),
            "fingerprint_sha256": facts.fingerprint_sha256,
            "key_type": facts.key_type,
            "cert_pem": cert_pem,
            "chain_pem": chain_pem,
        }
        return json_response(200, success=True, data=data)
    return ctx.render(
        "cpanel/view.html",
        vhost=vhost,
        entry=entry,
        facts=facts,
        source=source,
        cert_pem=cert_pem,
        chain_pem=chain_pem,
        key_labels=KEY_TYPE_LABELS,
    )


def remove_confirm(ctx: PageContext) -> Response:
    vhost = ctx.vhost()
    entry = _entry(ctx, vhost)
    if ctx.wants_json:
        raise PageError(405, "Remove is a POST with the CSRF token.")
    revoke = ctx.request.value("revoke").lower() in TRUE_WORDS
    return ctx.render(
        "cpanel/remove.html",
        vhost=vhost,
        entry=entry,
        revoke=revoke,
        reasons=_revocation_reasons() if revoke else {},
    )


def _revocation_reasons() -> dict[str, str]:
    """The reasons a subscriber may give (issue_plan.REVOCATION_REASONS), in words."""
    # Imported here: issue_plan loads the challenge solvers, which Home must not pay for.
    from ..issue_plan import REVOCATION_REASONS

    return {name: REVOCATION_REASON_LABELS.get(name, name) for name in REVOCATION_REASONS}


def progress(ctx: PageContext) -> Response:
    vhost = ctx.vhost()
    return json_response(200, success=True, data=ProgressFile(ctx.nvdata).read(vhost.domain))


# ---- POST -----------------------------------------------------------------------------------


def issue(ctx: PageContext) -> Response:
    vhost = ctx.vhost("vhost", "virtual_host", "domain")
    raw = [n for n in ctx.request.values("name", "names", "dns_identifiers") if n.strip()]
    back = ctx.url("issue", vhost=vhost.domain)
    if not raw:
        raise PageError(400, "Tick at least one name for the certificate, then press Issue.")
    names = _names_of(vhost, raw)
    key_type = ctx.request.value("key_type") or ctx.settings.default_key_type
    if key_type not in KEY_TYPES:
        raise PageError(400, f"Unknown key type {key_type!r}; choose one of the list.")
    challenge = _challenge(ctx.request.value("challenge", "challenge_method"))
    if challenge == "http-01" and any(is_wildcard(n) for n in names):
        raise PageError(
            400,
            "A wildcard can only be validated through DNS: choose Automatic or DNS, or untick "
            "Wildcard.",
        )
    dry_run = ctx.request.value("dry_run").lower() in TRUE_WORDS
    options: dict[str, Any] = {}
    if challenge:
        options["challenge"] = challenge
    if dry_run:
        options["dry_run"] = True

    def work(issuer: PageIssuer) -> Response:
        result = issuer.issue(names, key_type, **options)
        # getattr: an issuer from before issue 7 (a test's fake) has neither field.
        method = str(getattr(result, "challenge_method", "") or "")
        how = CHALLENGE_LABELS.get(method, method)
        if getattr(result, "dry_run", False):
            text = (
                f"Test only (dry run), nothing changed: the staging certificate authority "
                f"issued a test certificate for {', '.join(result.names)}"
                + (f", validated through {how}" if how else "")
                + ". It was not installed or saved, and your website keeps the certificate it "
                "had. Press Issue to get the real certificate."
            )
            return succeeded(ctx, result.summary(), text, back)
        done = "The saved certificate was installed" if result.reused_saved else "Issued"
        text = (
            f"{done}: {vhost.domain} is secured until {format_date(result.not_after)} "
            f"({', '.join(result.names)}). It renews by itself before then."
        )
        return succeeded(ctx, result.summary(), text)

    return _busy_work(ctx, vhost, back, work)


def _names_of(vhost: Vhost, raw: list[str]) -> list[str]:
    """The names asked for, normalized; each a name of `vhost` or `*.` and one of its names."""
    names = []
    for name in raw:
        try:
            normal = normalize_name(name, allow_wildcard=True)
        except NameRefused as exc:
            raise PageError(400, f"{exc} Untick it, or correct it.") from exc
        if wildcard_base(normal) not in vhost.names:
            raise PageError(
                403,
                f"{name!r} is not a name of the website {vhost.domain}: only its own names can "
                "go on its certificate.",
            )
        names.append(normal)
    return names


def _challenge(raw: str) -> str:
    """The challenge method asked ("" is Automatic); 400 for anything else."""
    value = raw.strip().lower()
    value = _CHALLENGE_ALIASES.get(value, value)
    if value not in CHALLENGE_LABELS:
        raise PageError(
            400, f"Unknown challenge {raw!r}; choose Automatic, HTTP (http-01) or DNS (dns-01)."
        )
    return value


def reinstall(ctx: PageContext) -> Response:
    vhost = ctx.vhost()
    _entry(ctx, vhost)

    def work(issuer: PageIssuer) -> Response:
        result = issuer.reinstall(vhost.domain)
        text = f"The certificate of {vhost.domain} was installed again."
        return succeeded(ctx, result.summary(), text)

    return _busy_work(ctx, vhost, ctx.url(), work)


def remove(ctx: PageContext) -> Response:
    vhost = ctx.vhost()
    _entry(ctx, vhost)
    revoke = ctx.request.value("revoke").lower() in TRUE_WORDS
    asked = ctx.request.value("reason") or "unspecified"
    known = {name.lower(): name for name in _revocation_reasons()} if revoke else {}
    reason = known.get(asked.strip().lower(), "")
    if revoke and not reason:
        raise PageError(400, f"Unknown revocation reason {asked!r}; choose one of the list.")

    def work(issuer: PageIssuer) -> Response:
        if revoke:
            issuer.remove(vhost.domain, revoke=True, reason=reason)
        else:
            issuer.remove(vhost.domain)
        text = (
            f"The plugin's certificate was removed from {vhost.domain}; it is no longer renewed. "
            "Use Issue to secure it again."
        )
        if revoke:
            label = REVOCATION_REASON_LABELS.get(reason, reason)
            text = f"Revoked at the certificate authority (reason: {label}). " + text
        data = {"vhost": vhost.domain, "revoked": True, "reason": reason} if revoke else None
        return succeeded(ctx, data, text)

    return _busy_work(ctx, vhost, ctx.url(), work)


# ---- pages without a context ------------------------------------------------------------------


def refused(ctx: PageContext) -> Response:
    text = (
        "Free certificates from Let's Encrypt are not enabled for your hosting package. "
        "Ask your hosting provider to enable the features “letsencrypt-cpanel” and "
        "“SSL/TLS installation” (sslinstall) for your account."
    )
    if ctx.wants_json:
        return json_response(403, success=False, errors=[text])
    return message_page(ctx.templates, ctx.nonce, 403, "Not available for this account", text)


def message_page(folder: Path, nonce: str, status: int, title: str, text: str) -> Response:
    body = render(
        folder,
        "cpanel/message.html",
        {"title": title, "text": text, "status": status, "nonce": nonce, "when": time.time()},
    )
    return Response(status, body.encode("utf-8"), nonce=nonce)
