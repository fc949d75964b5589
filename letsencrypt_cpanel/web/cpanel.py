"""The cPanel page as a WSGI app: `create_app(settings, api_factory)`, run per request by
`cgi/letsencrypt.live.cgi` as the logged-in user.

Routing is by the `action` field (FleetSSL's scheme, prior-art §1.2); a request whose Accept
includes `application/json` gets the JSON API instead of HTML (§1.3). GET never changes anything;
every POST carries the CSRF token of the cPanel session. The app acts only on what cPanel's
`domains_data` lists for this user, and only for users with the plugin's feature and
`sslinstall`.

The JSON API (send `Accept: application/json`; POST bodies as a form or a JSON object; the
CSRF token in `csrf_token` or `X-CSRF-Token`, read from `data.csrf_token` of the list):

    GET  ?action=list                      {"virtual_hosts": [...], "csrf_token", ...}
    GET  ?action=view&vhost=V              names, issuer, validity, fingerprint, PEMs (no key)
    GET  ?action=progress&vhost=V          the step an issue in flight is on
    GET  ?action=issue&vhost=V             the form's choices; names[].wildcard_offered says where
                                           this account has the name's DNS zone
    GET  ?action=settings                  {"send_success_mail": bool, "server_sends_success_mail"}
    POST action=issue vhost=V name=N...    [key_type=rsa:2048|rsa:4096|ecdsa:p-256|ecdsa:p-384]
                                           [challenge=|http-01|dns-01] [dry_run=0|1]
    POST action=reinstall vhost=V
    POST action=remove vhost=V             [revoke=0|1] [reason=unspecified|keyCompromise|...]
    POST action=settings send_success_mail=0|1

A name may be a wildcard `*.N` of a name N of the website (validated with dns-01: the domain's
zone must be on this server). `challenge` empty is Automatic (http-01; dns-01 for wildcards, or
when the site does not answer http-01 and its zone is here). `dry_run`: issue from the staging
CA, install and save nothing; `data.dry_run` says so. `remove` with `revoke` revokes at the CA
first (reasons: issue_plan.REVOCATION_REASONS); its `data` is `{"vhost", "revoked", "reason"}`.

Replies are `{"success", "errors", "data"}`: 400 bad input, 403 refused (CSRF, feature, a name
not of the website), 404 a website not of this account, 409 busy (or already revoked), 422 dns-01
impossible (no zone of this account holds the name), 429 the CA's rate limit or the server's
budget for it (issue_budget.py; with Retry-After when it is known when it ends), 502 the CA or
cPanel failed, 504 the zone's nameservers never served the dns-01 record.
FleetSSL's `api_function=` names and fields (`virtual_host`, `dns_identifiers`) are accepted.

This module and Home stay light (no `acme`, `requests`, `josepy`, no key generation): the
issuance code is imported only when a POST issues, reinstalls or removes (`cpanel_views`).
"""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..cpanel.liveapi import build_liveapi_from_env
from ..cpanel.uapi import UserAPI
from ..errors import Error
from ..system_users import lookup_user
from . import cpanel_views as views
from .cpanel_context import IssuerFactory, PageContext, default_issuer
from .cpanel_issue_form import issue_form
from .cpanel_settings import save_settings, settings_form
from .csrf import CsrfGuard
from .dispatch import dispatch
from .error_advice import PageError, json_failure, message_for, status_for
from .nvdata_files import NvdataFolder
from .rendering import preload, templates_dir
from .responses import BadRequest, Request, Response, new_nonce

PLUGIN_FEATURE = "letsencrypt-cpanel"
SSL_FEATURE = "sslinstall"

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
ApiFactory = Callable[[Mapping[str, str]], UserAPI]
HomeFinder = Callable[[Settings, Mapping[str, str]], Path]

# FleetSSL's JSON function names (prior-art §1.3), so its scripts keep working.
_API_FUNCTIONS = {
    "list-certificates": "list",
    "issue-certificate": "issue",
    "reinstall-certificate": "reinstall",
    "remove-certificate": "remove",
}
_GET_VIEWS = {
    "": views.home,
    "home": views.home,
    "list": views.home,
    "issue": issue_form,
    "view": views.view,
    "remove": views.remove_confirm,
    "settings": settings_form,
    "progress": views.progress,
}
_POST_VIEWS = {
    "issue": views.issue,
    "reinstall": views.reinstall,
    "remove": views.remove,
    "settings": save_settings,
}


def user_home(settings: Settings, environ: Mapping[str, str]) -> Path:
    """The home of the user this process runs as: cPanel's passwd entry for REMOTE_USER when it
    is this uid, else the system's entry for this uid, else $HOME (the sandbox sets it)."""
    try:
        entry = lookup_user(settings, environ.get("REMOTE_USER", ""))
        if entry.uid == os.getuid():
            return entry.home
    except Error:
        pass
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    home = environ.get("HOME", "")
    if not home.startswith("/"):
        raise PageError(500, "The page cannot find your home folder. Please tell your host.")
    return Path(home)


def create_app(
    settings: Settings,
    api_factory: ApiFactory = build_liveapi_from_env,
    *,
    templates: Path | None = None,
    home_finder: HomeFinder = user_home,
    issuer_factory: IssuerFactory = default_issuer,
) -> WSGIApp:
    """The WSGI app. `api_factory(environ)` gives the user's API (LiveAPI in a CGI)."""
    folder = templates or templates_dir()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        nonce = new_nonce()
        wants_json = "application/json" in str(environ.get("HTTP_ACCEPT") or "").lower()
        try:
            request = Request.parse(environ)
            if not wants_json and request.method == "GET" and not request.value("action"):
                preload(folder, views.HOME_TEMPLATE)  # while cPanel answers Home's questions
            env = {k: v for k, v in environ.items() if isinstance(v, str)}
            home = home_finder(settings, env)
            nvdata = NvdataFolder(home)
            api = api_factory(env)
            ctx = PageContext(
                request=request,
                settings=settings,
                api=api,
                user=env.get("REMOTE_USER", ""),
                home=home,
                nvdata=nvdata,
                csrf=CsrfGuard(nvdata, env.get("cp_security_token", "")),
                page_url=env.get("cp_security_token", "") + env.get("SCRIPT_NAME", ""),
                templates=folder,
                nonce=nonce,
                issuer_factory=issuer_factory,
            )
            try:
                response = _dispatch(ctx)
            finally:
                _close(api)
        except (PageError, BadRequest, Error) as exc:
            response = _failure(folder, nonce, wants_json, exc)
        except Exception as exc:  # the edge: a bug still answers a page, the trace goes to the log
            import traceback  # here: only a bug needs it, every view would pay for it

            traceback.print_exc(file=environ.get("wsgi.errors") or sys.stderr)
            response = _failure(folder, nonce, wants_json, exc)
        return response.wsgi(start_response)

    return app


def _dispatch(ctx: PageContext) -> Response:
    request = ctx.request
    action = request.value("action") or _API_FUNCTIONS.get(request.value("api_function"), "")
    if not _has_features(ctx):
        return views.refused(ctx)
    return dispatch(
        ctx,
        request,
        action,
        get_views=_GET_VIEWS,
        post_views=_POST_VIEWS,
        token_valid=ctx.csrf.valid,
        session="cPanel",
        back="Go back to the list.",
    )


def _close(api: UserAPI) -> None:
    # The LiveAPI socket stays open across the calls of one request; a test that runs the app
    # in process many times must not pile connections up.
    close = getattr(api.transport, "close", None)
    if callable(close):
        close()


def _has_features(ctx: PageContext) -> bool:
    return ctx.api.has_feature(PLUGIN_FEATURE) and ctx.api.has_feature(SSL_FEATURE)


def _failure(folder: Path, nonce: str, wants_json: bool, exc: BaseException) -> Response:
    if wants_json:
        return json_failure(exc)
    status, text = status_for(exc), message_for(exc)
    return views.message_page(folder, nonce, status, "Something needs your attention", text)


def app_from_environment(environ: Mapping[str, str] | None = None) -> WSGIApp:
    """The app as the CGI launcher builds it: settings from `LECP_ROOT`'s public config."""
    env = os.environ if environ is None else environ
    try:
        settings = load_settings(env)
    except Error as exc:
        failure = exc

        def broken(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            wants = "application/json" in str(environ.get("HTTP_ACCEPT") or "").lower()
            return _failure(templates_dir(env), new_nonce(), wants, failure).wsgi(start_response)

        return broken
    return create_app(settings, templates=templates_dir(env))
