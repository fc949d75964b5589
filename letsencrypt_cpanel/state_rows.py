"""The rows of root's state database (state.py) and the worker reports that fill them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VhostState:
    user: str
    vhost: str
    status: str
    names: tuple[str, ...]
    not_before: int
    not_after: int
    issuer: str
    failures: int
    last_error: str
    last_attempt: int
    next_attempt: int


@dataclass(frozen=True)
class UserState:
    user: str
    last_run: int
    failures: int
    last_error: str
    next_attempt: int
    disable_mail: bool


@dataclass(frozen=True)
class VhostReport:
    """One certificate as a worker reported it (already checked by `renewal.parse_report`)."""

    vhost: str
    action: str  # user_renewal's: renewed, reinstalled, not_due, replaced, names_gone, failed
    names: tuple[str, ...] = ()
    not_before: int = 0
    not_after: int = 0
    issuer: str = ""
    error: str = ""
    renew_at: int = 0  # the CA's (ARI) chosen renewal time of a certificate not yet due
    ari_id: str = ""  # its ARI id (RFC 9773 §4.1), for root to ask the CA about meanwhile
    ari_recheck: int = 0  # when to ask the CA again
    challenge: str = ""  # how a failed renewal checked the names, when known


@dataclass(frozen=True)
class UserReport:
    disable_mail: bool
    outcomes: list[VhostReport]


@dataclass(frozen=True)
class HistoryEntry:
    at: int
    user: str
    vhost: str
    action: str
    detail: str
