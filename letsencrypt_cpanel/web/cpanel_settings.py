"""The cPanel page's Settings: the user's choice of success e-mails.

Only renewals send a success mail (notify.plan_mails): an issue from the page shows its outcome on
the page and mails nothing, so the setting speaks of renewals only. When the admin turned success
mails off for the whole server (`Settings.send_success_mail`), the user's choice changes nothing:
the form shows it switched off and says so, and offers nothing to save.
"""

from __future__ import annotations

from . import one_time_message
from .cpanel_context import PageContext
from .cpanel_views import TRUE_WORDS, succeeded
from .responses import Response, json_response


def settings_form(ctx: PageContext) -> Response:
    record, warning = ctx.record()
    server_sends = ctx.settings.send_success_mail
    if ctx.wants_json:
        data = {
            "send_success_mail": not record.disable_mail,
            "server_sends_success_mail": server_sends,
            "csrf_token": ctx.csrf.token(),
        }
        return json_response(200, success=True, data=data)
    return ctx.render(
        "cpanel/settings.html",
        send_success_mail=not record.disable_mail,
        server_sends_success_mail=server_sends,
        server_sends_failure_mail=ctx.settings.send_failure_mail,
        warning=warning,
        message=one_time_message.take(ctx.nvdata),
    )


def save_settings(ctx: PageContext) -> Response:
    request = ctx.request
    if request.values("disable_mail"):
        send = request.value("disable_mail").lower() not in TRUE_WORDS
    else:
        send = request.value("send_success_mail").lower() in TRUE_WORDS
    with ctx.store.locked(timeout=10) as txn:
        txn.record.disable_mail = not send
        txn.save()
    text = "Settings saved: " + (
        "you get an e-mail when a certificate is renewed."
        if send
        else "no more e-mails about certificates renewed successfully."
    )
    if send and not ctx.settings.send_success_mail:
        text += " Your hosting provider has turned these e-mails off for this server, though."
    return succeeded(ctx, {"send_success_mail": send}, text, ctx.url("settings"))
