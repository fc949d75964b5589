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
`MAX_PER_CYCLE` certificates a cycle (50 per user), longest waiting first, for at most
`TIME_BUDGET` seconds and until the CA fails three times in a row, before any worker is forked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .config import Settings
from .errors import AcmeError
from .state import StateDB

log = logging.getLogger(__name__)

MAX_PER_CYCLE = 2000
TIME_BUDGET = 120.0  # seconds a cycle spends asking, at most: renewals come first
NETWORK_TIMEOUT = 10
MAX_ERRORS_IN_A_ROW = 3  # then the CA is down or slow: ask again next cycle
RETRY_AFTER_ERROR = 6 * 3600


def ask_the_ca(
    db: StateDB,
    settings: Settings,
    now: float,
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[str]:
    """Refresh the windows due for a check; returns "user vhost" of each visit now planned.
    Never raises: renewals must go on whatever the CA or this check does."""
    try:
        return _ask(db, settings, now, should_stop)
    except Exception:
        log.exception("ARI not checked")
        return []


def _ask(db: StateDB, settings: Settings, now: float, should_stop: Callable[[], bool]) -> list[str]:
    rows = db.ari_to_ask(int(now), MAX_PER_CYCLE)
    if not rows:
        return []
    from .acme_client import connect  # only when there is something to ask

    ends = time.monotonic() + TIME_BUDGET
    try:
        session = connect(
            settings.acme_directory,
            ca_bundle=settings.acme_ca_bundle or None,
            timeout=NETWORK_TIMEOUT,
        )
    except AcmeError as exc:
        log.info("ARI not checked: the CA did not answer (%s)", exc)
        return []
    moved: list[str] = []
    errors = 0
    for user, vhost, cert_id, chosen in rows:
        if should_stop() or time.monotonic() > ends or errors >= MAX_ERRORS_IN_A_ROW:
            break
        try:
            window = session.renewal_window(cert_id, now)
        except AcmeError as exc:
            errors += 1
            log.info("ARI for %s %s not checked: %s", user, vhost, exc)
            with db.transaction():  # not first in line again next cycle
                db.ari_answered(user, vhost, chosen, int(now) + RETRY_AFTER_ERROR)
            continue
        errors = 0
        if window is None:
            log.info("the CA no longer offers renewal information")
            return moved
        # The moment chosen earlier stands while it is inside the CA's window; once it has come,
        # or the window moved off it (a revocation ahead), the user is visited now and the
        # worker, asking the CA itself, renews or draws a new moment.
        visit = chosen <= now or not window.start <= chosen <= window.end
        with db.transaction():
            db.ari_answered(user, vhost, int(now) if visit else chosen, int(window.recheck_at))
        if visit:
            log.info("ARI: the CA asks for %s %s to be renewed now", user, vhost)
            moved.append(f"{user} {vhost}")
    return moved
