"""The cPanel page's Issue form (GET ?action=issue&vhost=V): the website's names, a Wildcard
box where this account has the name's DNS zone (wildcard_offer.py), a key type, the method."""

from __future__ import annotations

from ..config import KEY_TYPES
from . import one_time_message
from .cpanel_context import PageContext
from .cpanel_views import CHALLENGE_LABELS, KEY_TYPE_LABELS
from .progress import ProgressFile
from .responses import Response, json_response
from .wildcard_offer import is_www, wildcard_offer


def issue_form(ctx: PageContext) -> Response:
    vhost = ctx.vhost()
    entry = ctx.record()[0].certificates.get(vhost.domain)
    ticked = {vhost.domain, f"www.{vhost.domain}", *(entry.names if entry else ())}
    key_type = ctx.settings.default_key_type
    if entry is not None and entry.key_type in KEY_TYPES:
        key_type = entry.key_type
    names = [(name, name in ticked) for name in vhost.names]
    offer = wildcard_offer(ctx.api, vhost.names)
    # name -> whether its Wildcard box is ticked, for the names that get one.
    wildcards = {name: f"*.{name}" in ticked for name in vhost.names if name in offer.names}
    # Names that could have had a wildcard but whose zone is elsewhere: the form says why not.
    elsewhere = [n for n in vhost.names if not is_www(n) and n not in offer.names]
    if ctx.wants_json:
        data = {
            "vhost": vhost.domain,
            "names": [
                {
                    "name": n,
                    "ticked": t,
                    "wildcard": wildcards.get(n, False),
                    "wildcard_offered": n in wildcards,
                }
                for n, t in names
            ],
            "wildcard_problem": offer.problem,
            "key_types": list(KEY_TYPES),
            "key_type": key_type,
            "challenges": list(CHALLENGE_LABELS),
            "challenge": "",
            "csrf_token": ctx.csrf.token(),
        }
        return json_response(200, success=True, data=data)
    return ctx.render(
        "cpanel/issue.html",
        vhost=vhost,
        names=names,
        wildcards=wildcards,
        wildcard_problem=offer.problem,
        zone_elsewhere=[] if offer.problem else elsewhere,
        key_types=KEY_TYPE_LABELS,
        key_type=key_type,
        challenges=CHALLENGE_LABELS,
        running=ProgressFile(ctx.nvdata).read(vhost.domain),
        message=one_time_message.take(ctx.nvdata),
    )
