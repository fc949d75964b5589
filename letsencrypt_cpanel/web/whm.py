"""The WHM page as a WSGI app: `create_app(settings, whm_factory)`, run per request by
`cgi/whm/letsencrypt.live.cgi` as root, with the WHM user in REMOTE_USER.

Order of checks, for pages and JSON calls alike: who is asking (root, a reseller with `all`, or
another reseller limited to its own accounts; anybody else gets 403) before anything else; then
options and actions refused (403) to a limited reseller; then, for a POST, the CSRF token of
this WHM session; only then the view. Routing is by the `action` field; a request whose Accept
includes `application/json` gets the JSON API ({"success", "errors", "data"}), as on the cPanel
page. GET never changes anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import Settings, load_secrets, load_settings, root_from_env
from ..errors import Error
from . import whm_views as views
from .dispatch import dispatch
from .error_advice import PageError, message_for, status_for
from .rendering import render, templates_dir
from .responses import BadRequest, Request, Response, json_response, new_nonce
from .whm_access import Forbidden, WhmCsrf, resolve_access

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
WhmFactory = Callable[[Settings], Any]

_GET_VIEWS = {
    "": views.home,
    "home": views.home,
    "certificates": views.home,
    "options": views.options_form,
    "actions": views.actions_page,
}
_POST_VIEWS = {
    "save_options": views.save_options,
    "renew": views.renew,
    "autossl": views.autossl,
    "service_cert": views.service_cert,
    "exclude_cpanel_autossl": views.exclude_cpanel_autossl,
}
# Everything but the certificate list is for root and `all` resellers only.
_FULL_ONLY = (set(_GET_VIEWS) | set(_POST_VIEWS)) - {"", "home", "certificates"}


def root_whm_api(settings: Settings) -> Any:
    """Root's WHM API over the pinned loopback TLS (the page runs as root)."""
    from ..cpanel.https import build_whm_api
    from ..cpanel.tls import load_pinned_tls

    return build_whm_api(settings, load_secrets(settings), load_pinned_tls(settings))


def create_app(
    settings: Settings,
    whm_factory: WhmFactory = root_whm_api,
    *,
    templates: Path | None = None,
) -> WSGIApp:
    folder = templates or templates_dir()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        nonce = new_nonce()
        wants_json = "application/json" in str(environ.get("HTTP_ACCEPT") or "").lower()
        try:
            # Access first: nothing is parsed, read or asked of WHM for a stranger.
            remote_user = str(environ.get("REMOTE_USER") or "")
            access = resolve_access(settings, remote_user)
            request = Request.parse(environ)
            action = request.value("action") or request.value("api")
            if action in _FULL_ONLY:
                access.require_full()
            session_token = str(environ.get("cp_security_token") or "")
            ctx = views.WhmContext(
                request=request,
                settings=settings,
                access=access,
                csrf=WhmCsrf(settings.state_dir, access.user, session_token),
                page_url=session_token + str(environ.get("SCRIPT_NAME") or ""),
                templates=folder,
                nonce=nonce,
                whm_factory=whm_factory,
            )
            response = _dispatch(ctx, action)
        except Forbidden as exc:
            response = _failure(folder, nonce, wants_json, 403, str(exc))
        except (PageError, BadRequest, Error) as exc:
            response = _failure(folder, nonce, wants_json, status_for(exc), message_for(exc))
        return response.wsgi(start_response)

    return app


def _dispatch(ctx: views.WhmContext, action: str) -> Response:
    return dispatch(
        ctx,
        ctx.request,
        action,
        get_views=_GET_VIEWS,
        post_views=_POST_VIEWS,
        token_valid=ctx.csrf.valid,
        session="WHM",
        back="Go back to the page.",
    )


def _failure(folder: Path, nonce: str, wants_json: bool, status: int, text: str) -> Response:
    if wants_json:
        return json_response(status, success=False, errors=[text])
    context = {"title": "Something needs your attention", "text": text, "nonce": nonce}
    body = render(folder, "whm/message.html", {**context, "status": status})
    return Response(status, body.encode("utf-8"), nonce=nonce)


def app_from_environment(environ: Mapping[str, str] | None = None) -> WSGIApp:
    """The app as the CGI launcher builds it: settings from `LECP_ROOT`'s public config."""
    env = os.environ if environ is None else environ
    try:
        settings = load_settings(env)
    except Error as exc:
        text = message_for(exc)

        def broken(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            wants = "application/json" in str(environ.get("HTTP_ACCEPT") or "").lower()
            folder = templates_dir(env)
            status, shown = 500, text
            try:  # even a broken config says nothing to a stranger
                resolve_access(Settings(root=root_from_env(env)), str(environ.get("REMOTE_USER")))
            except Forbidden as refused:
                status, shown = 403, str(refused)
            return _failure(folder, new_nonce(), wants, status, shown).wsgi(start_response)

        return broken
    return create_app(settings, templates=templates_dir(env))
