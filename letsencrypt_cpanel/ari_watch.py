"""Root asks the CA about certificates not yet due (ARI, RFC 9773), between users' visits.

A worker learns a certificate's renewal window when it runs for the user, and root plans the
next visit for the moment chosen in it (state.py `not_due` rows). But the CA may move the window
earlier at any time: before a mass revocation it asks for renewal within days, and a user whose
next visit is weeks away would keep a certificate that is about to be revoked. So each cycle root
asks the CA again for the certificates whose Retry-After has passed (an unsigned GET of
`renewalInfo/<id>`: public information, no account, nothing of the user's opened), and plans a
visit now when the window has started or has moved to end before the moment chosen earlier. The
worker then asks the CA itself and renews, or reports the new moment.

Only the server's own CA is asked (a user's record must never send root to another URL), at most
`MAX_PER_CYCLE` certificates a cycle, longest waiting first, before any worker is forked.
"""

from __future__ import annotations

import logging

from .config import Settings
from .errors import AcmeError
from .state import StateDB

log = logging.getLogger(__name__)

MAX_PER_CYCLE = 2000


def ask_the_ca(db: StateDB, settings: Settings, now: float) -> list[str]:
    """Refresh the windows due for a check; returns "user vhost" of each visit now planned."""
    rows = db.ari_to_ask(int(now), MAX_PER_CYCLE)
    if not rows:
        return []
    from .acme_client import connect  # only when there is something to ask

    try:
        session = connect(settings.acme_directory, ca_bundle=settings.acme_ca_bundle or None)
    except AcmeError as exc:
        log.info("ARI not checked: the CA did not answer (%s)", exc)
        return []
    moved: list[str] = []
    for user, vhost, cert_id, chosen in rows:
        try:
            window = session.renewal_window(cert_id, now)
        except AcmeError as exc:
            log.info("ARI for %s %s not checked: %s", user, vhost, exc)
            continue
        if window is None:
            log.info("the CA no longer offers renewal information")
            return moved
        visit = window.start <= now or window.end < chosen
        with db.transaction():
            db.ari_answered(user, vhost, int(now) if visit else chosen, int(window.recheck_at))
        if visit:
            log.info("ARI: the CA asks for %s %s to be renewed now", user, vhost)
            moved.append(f"{user} {vhost}")
    return moved
