"""How both pages (cPanel's and WHM's) route a request to a view: a POST only to an action that
changes something, after its CSRF token (form field or header) was checked; GET and HEAD only to
views that read. Anything else is a clear 4xx, never a view."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from .error_advice import PageError
from .responses import Request, Response

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "HTTP_X_CSRF_TOKEN"  # X-CSRF-Token, for scripts using the JSON API

Ctx = TypeVar("Ctx")


def dispatch(
    ctx: Ctx,
    request: Request,
    action: str,
    *,
    get_views: Mapping[str, Callable[[Ctx], Response]],
    post_views: Mapping[str, Callable[[Ctx], Response]],
    token_valid: Callable[[str], bool],
    session: str,
    back: str,
) -> Response:
    """The view's response. `session`: whose session the token is bound to ("cPanel", "WHM");
    `back`: what to do next, said after a refusal ("Go back to the list.")."""
    if request.method == "POST":
        post_view = post_views.get(action)
        if post_view is None:
            raise PageError(400, f"There is no action {action!r}. {back}")
        if not token_valid(request.value(CSRF_FIELD) or request.env(CSRF_HEADER)):
            raise PageError(
                403,
                f"This form has expired or did not come from your {session} session. {back} "
                "Reload it and try again.",
            )
        return post_view(ctx)
    if request.method not in ("GET", "HEAD"):
        raise PageError(405, "Only GET and POST are answered here.")
    get_view = get_views.get(action)
    if get_view is None:
        raise PageError(404, f"There is no page {action!r}. {back}")
    return get_view(ctx)
