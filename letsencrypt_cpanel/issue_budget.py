"""A user's own orders (the cPanel page's Issue, `le-cp ssl issue`) within the CA's rate limits.

AutoSSL reserves its budgets in root before it starts a worker (autossl.py). A user's click runs
as the user, who cannot write root's budget database, so the Issuer asks root's socket
(root_service.py) to `reserve` what the order may spend before the CA is asked, and to `settle`
it with what was really spent afterwards (budgets.py: new account, new order, the exact set of
names, the registered domain, failed validations). An order that does not fit is refused before
the CA sees it (`BudgetDenied`: 429 with Retry-After on the page), so a user's clicks never use
up the limits the server's AutoSSL and renewals count on.

Root answers only for names that /etc/userdomains gives to the caller (one cPanel account per
uid, SO_PEERCRED), keeps at most one open reservation per user (an earlier one lapses, still
counted), settles a reservation only for the user who made it, and counts a user's new account
once per window whatever the user claims. A `rateLimited` answer the user reports pauses only
budgets keyed by that user's account or names (never the shared new-account or registered-domain
ones), for at most a week, and never shortens a pause. When root's socket does not answer
(the daemon is stopped), the order goes ahead unbudgeted, as before the daemon ran: the CA's own
limits still hold, and a site owner is not stopped by a daemon that is down.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .budgets import (
    DUPLICATES,
    FAILED_VALIDATIONS,
    NEW_ORDERS,
    Attempt,
    BudgetError,
    Budgets,
    Denied,
    budget_ip,
    failed_validation_spend,
)
from .budgets import classify_rate_limit as _kind_of
from .config import Settings
from .errors import AcmeError, ChallengeFailed, Error, RateLimited, SelfCheckFailed

log = logging.getLogger(__name__)

MAX_NAMES = 100
MAX_NAME_LENGTH = 253
MAX_DETAIL = 500
LONGEST_PAUSE = 7 * 86400


class BudgetDenied(RateLimited):
    """Root's budget for this order is used up: refused before the CA was asked."""

    def __init__(self, reason: str, retry_after: dt.datetime | None) -> None:
        self.retry_after = retry_after
        when = f" Try again after {retry_after:%Y-%m-%d %H:%M} UTC." if retry_after else ""
        AcmeError.__init__(
            self,
            "This server holds the order back so as not to go over the certificate authority's "
            f"rate limits ({reason}).{when}",
            kind="rateLimited",
            detail=reason,
        )


# -- the user's side --------------------------------------------------------------------------


@dataclass
class Ticket:
    """One order's reservation (0: none, the order is not budgeted)."""

    socket_path: Path
    reservation: int = 0

    def settle(self, *, account_created: bool, error: Error | None = None) -> None:
        """Tell root what the order spent: issued when `error` is None, else what the error
        says was spent. Never raises: root keeps a reservation it was not told about."""
        if not self.reservation:
            return
        request: dict[str, Any] = {
            "op": "settle",
            "reservation": self.reservation,
            "account_created": account_created,
            "ordered": not isinstance(error, SelfCheckFailed),
            "issued": error is None,
            "failed_names": [],
            "rate_limited": None,
        }
        if isinstance(error, ChallengeFailed) and not isinstance(error, SelfCheckFailed):
            request["failed_names"] = [error.domain]
        if isinstance(error, RateLimited) and not isinstance(error, BudgetDenied):
            until = int(error.retry_after.timestamp()) if error.retry_after else 0
            request["rate_limited"] = {"detail": error.detail[:MAX_DETAIL], "until": until}
        from .root_service import RootServiceError, ask_root

        try:
            ask_root(self.socket_path, request, timeout=5.0)
        except RootServiceError as exc:
            log.info("the order's budget was not settled: %s", exc)


class RootBudget:
    """Asks root's socket for a reservation before an order. Constructing does no I/O."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def reserve(self, directory: str, names: Sequence[str], *, new_account: bool) -> Ticket:
        """A ticket for the order; raises BudgetDenied when root's budget is used up."""
        from .root_service import RootServiceError, ask_root

        request = {
            "op": "reserve",
            "directory": directory,
            "names": list(names),
            "new_account": new_account,
        }
        try:
            answer = ask_root(self.socket_path, request, timeout=10.0)
        except RootServiceError as exc:
            if exc.reply.get("denied") is True:
                until = exc.reply.get("until")
                when = (
                    dt.datetime.fromtimestamp(until, dt.timezone.utc)
                    if isinstance(until, int) and until > 0
                    else None
                )
                raise BudgetDenied(str(exc), when) from None
            # Quietly: `le-cp` promises one line on stderr, and the README says orders go
            # ahead unbudgeted while the daemon is stopped (whose own log says why).
            log.info("the order goes ahead without a budget: %s", exc)
            return Ticket(self.socket_path)
        reservation = answer.get("reservation")
        if isinstance(reservation, bool) or not isinstance(reservation, int) or reservation < 0:
            reservation = 0
        return Ticket(self.socket_path, reservation)


# -- root's side ------------------------------------------------------------------------------


def owners(settings: Settings) -> dict[str, str]:
    """/etc/userdomains: every domain of the server (main, addon, sub, parked) -> its user."""
    text = settings.path("/etc/userdomains").read_text(encoding="utf-8", errors="replace")
    found = {}
    for line in text.splitlines():
        domain, sep, user = line.partition(":")
        if sep and not line.startswith("#"):
            found[domain.strip().lower()] = user.strip()
    return found


def owned_by(domains: Mapping[str, str], user: str, name: str) -> bool:
    """Whether `name` (or the domain it is a subdomain or wildcard of) is `user`'s: the longest
    listed domain it ends with decides, as cPanel gives a subdomain to its domain's owner."""
    labels = name.removeprefix("*.").split(".")
    for start in range(len(labels) - 1):
        owner = domains.get(".".join(labels[start:]))
        if owner is not None:
            return owner == user
    return False


# A DNS name as the page sends it (lowercase, IDNs in punycode), or its wildcard: nothing that
# could split or widen a budget key (commas, spaces) gets through.
_NAME = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{1,63}")
# Rate limits a user may report and so pause: keyed by that user's account or names alone.
# The new-account and registered-domain budgets are shared with other users: only root's own
# orders (AutoSSL, renewals) pause those.
_USERS_OWN = (NEW_ORDERS, DUPLICATES, FAILED_VALIDATIONS)
MAX_RESERVATION = 2**62


def _names(value: object, *, empty: bool = False) -> list[str] | None:
    if not isinstance(value, list) or not (0 if empty else 1) <= len(value) <= MAX_NAMES:
        return None
    if not all(isinstance(n, str) and 0 < len(n) <= MAX_NAME_LENGTH for n in value):
        return None
    names = list(dict.fromkeys(n.lower().rstrip(".") for n in value))
    return names if all(_NAME.fullmatch(n) for n in names) else None


def _refused(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


def answer_reserve(settings: Settings, user: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """Root's answer to `reserve` from `user` (the caller's account, from SO_PEERCRED)."""
    names = _names(request.get("names"))
    directory, new_account = request.get("directory"), request.get("new_account")
    if names is None or not isinstance(directory, str) or not isinstance(new_account, bool):
        return _refused("not a reservation request")
    if directory != settings.acme_directory:
        return {"ok": True, "reservation": 0}  # budgets count the server's CA alone
    try:
        domains = owners(settings)
    except OSError as exc:
        return _refused(f"cannot read the server's list of domains: {exc.strerror}")
    foreign = [n for n in names if not owned_by(domains, user, n)]
    if foreign:
        return _refused(f"not names of {user}: {', '.join(foreign[:5])}")
    now = time.time()
    try:
        with Budgets.open(settings) as budgets:
            for earlier in budgets.open_user_reservations(user):
                budgets.let_lapse(earlier)  # one open order per user
            # The CA refuses a name that failed too often lately: so does root, before it.
            failing = budgets.check([failed_validation_spend(user, n) for n in names], now)
            got = failing or budgets.reserve_for_user(
                user, names, new_account=new_account, ip=budget_ip(settings), now=now
            )
    except BudgetError as exc:
        return _refused(str(exc))
    if isinstance(got, Denied):
        return {"ok": False, "error": got.reason, "denied": True, "until": got.until}
    return {"ok": True, "reservation": got}


def answer_settle(settings: Settings, user: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """Root's answer to `settle` from `user`: only that user's own open reservation."""
    reservation = request.get("reservation")
    flags = [request.get(k) for k in ("account_created", "ordered", "issued")]
    failed = _names(request.get("failed_names"), empty=True)
    limited = request.get("rate_limited")
    if (
        not isinstance(reservation, int)
        or isinstance(reservation, bool)
        or not 0 < reservation < MAX_RESERVATION
        or not all(isinstance(f, bool) for f in flags)
        or failed is None
        or not (limited is None or _rate_limited(limited))
    ):
        return _refused("not a settle request")
    account_created, ordered, issued = (bool(f) for f in flags)
    now = time.time()
    ip = budget_ip(settings)
    try:
        with Budgets.open(settings) as budgets:
            held = budgets.user_reservation(reservation)
            if held is None or held.user != user:
                return _refused("no such reservation")
            attempt = Attempt(
                user,
                held.names,
                held.renewal,
                # Counted only where root reserved it: a claim alone spends nobody's budget.
                account_created=account_created and held.new_account,
                ordered=ordered or issued,
                issued=issued,
                failed_names=tuple(n for n in failed if n in held.names) if ordered else (),
            )
            budgets.settle(reservation, attempt.spends(ip), now)
            if issued:
                budgets.note_issued(held.names, now)
            if isinstance(limited, dict):
                detail = str(limited["detail"])
                if _kind_of(detail) in _USERS_OWN:
                    until = min(int(limited["until"]) or int(now) + 3600, int(now) + LONGEST_PAUSE)
                    budgets.rate_limited(detail, until, account=user, names=held.names, ip=ip)
    except BudgetError as exc:
        return _refused(str(exc))
    return {"ok": True}


def _rate_limited(value: object) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"detail", "until"}
        and isinstance(value["detail"], str)
        and len(value["detail"]) <= MAX_DETAIL
        and isinstance(value["until"], int)
        and not isinstance(value["until"], bool)
        and 0 <= value["until"] < 2**40
    )
