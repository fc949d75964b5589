"""The renewal worker's side: the job a worker runs as the user, and the summary it sends back.

`renewal_job` runs in a worker forked by root and dropped to the user (impersonate.py): it renews
what is due with `user_renewal.renew_user` (except the websites root says are backing off),
prunes a few superseded certificates and keys from the user's SSL storage, and reports each
certificate with the facts root keeps (no key, no PEM) plus the user's own `disable_mail`.
`parse_report` is root reading that summary back: untrusted input, checked field by field.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from .acme_client import Binder
from .errors import Error, WorkerError
from .impersonate import JSONValue
from .keys import certificate_facts
from .pruning import prune_superseded
from .state import UserReport, VhostReport
from .user_jobs import JobContext
from .user_renewal import NAMES_GONE, REPLACED, renew_user


def _issuer_of(cert_pem: str) -> str:
    try:
        return certificate_facts(cert_pem).issuer_common_name if cert_pem else ""
    except (ValueError, TypeError):
        return ""


def renewal_job(
    skip: frozenset[str],
    now: float,
    *,
    force: bool = False,
    only: str | None = None,
    binder: Binder | None = None,
) -> Callable[[JobContext], JSONValue]:
    """The job a worker runs as the user: renew what is due (except `skip`; every certificate
    with `force`, WHM's "renew now"; only the website `only` when given, `le-cp --vhost`), then
    report each certificate with the facts root keeps (no key, no PEM) and the user's
    `disable_mail`. `binder`: how the worker reaches root for an External Account Binding
    (default: the daemon's socket; `le-cp` passes a private one)."""

    def job(ctx: JobContext) -> JSONValue:
        def renew(one: str | None) -> list[JSONValue]:
            outcomes = renew_user(
                ctx.api,
                ctx.store,
                ctx.settings,
                contact_email=ctx.account.email or None,
                only_vhost=one,
                force=force,
                now=now,
                binder=binder,
            )
            return [o.summary() for o in outcomes]

        if skip:
            rows: list[JSONValue] = []
            for key in sorted(ctx.store.load().certificates):
                if key not in skip and only in (None, key):
                    rows.extend(renew(key))
        else:
            rows = renew(only)
        try:
            pruned: JSONValue = prune_superseded(ctx.api, ctx.store)
        except Error as exc:
            # Pruning is housekeeping: it never fails the renewals that succeeded.
            print(f"letsencrypt-cpanel: pruning skipped: {exc}", file=sys.stderr)
            pruned = 0
        record = ctx.store.load()
        for row in rows:
            assert isinstance(row, dict)
            entry = record.certificates.get(str(row.get("vhost")))
            row["not_before"] = entry.not_before if entry else 0
            row["issuer"] = _issuer_of(entry.cert_pem) if entry else ""
        return {"disable_mail": record.disable_mail, "outcomes": rows, "pruned": pruned}

    return job


# -- root, reading the summary ----------------------------------------------------------------


_ACTIONS = frozenset({"renewed", "reinstalled", "not_due", REPLACED, NAMES_GONE, "failed"})


def _text(value: JSONValue, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise WorkerError("The worker's summary holds a malformed field.")
    return value


def _number(value: JSONValue) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**40:
        raise WorkerError("The worker's summary holds a malformed number.")
    return value


# RFC 9773 §4.1: base64url of the AKI's key id, ".", base64url of the serial. Root puts it in a
# URL path, so nothing else gets through.
_ARI_ID = re.compile(r"[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{1,200}")


def _ari_id(value: JSONValue) -> str:
    text = _text(value, 401)
    if text and not _ARI_ID.fullmatch(text):
        raise WorkerError("The worker's summary holds a malformed ARI id.")
    return text


def _challenge(value: JSONValue) -> str:
    if value not in ("", "http-01", "dns-01"):
        raise WorkerError("The worker's summary holds an unknown challenge method.")
    return str(value)


def parse_report(value: JSONValue) -> UserReport:
    """A worker's summary, checked field by field. Raises WorkerError."""
    if not isinstance(value, dict) or not isinstance(value.get("disable_mail"), bool):
        raise WorkerError("The worker sent back a summary without the expected fields.")
    outcomes = value.get("outcomes")
    if not isinstance(outcomes, list) or len(outcomes) > 2000:
        raise WorkerError("The worker sent back a summary without a list of outcomes.")
    reports: list[VhostReport] = []
    for item in outcomes:
        if not isinstance(item, dict):
            raise WorkerError("The worker's summary holds a malformed outcome.")
        names = item.get("names")
        if not isinstance(names, list) or len(names) > 200:
            raise WorkerError("The worker's summary holds a malformed list of names.")
        action = _text(item.get("action"), 20)
        vhost = _text(item.get("vhost"), 255)
        if action not in _ACTIONS or not vhost:
            raise WorkerError("The worker's summary holds an unknown action.")
        reports.append(
            VhostReport(
                vhost=vhost,
                action=action,
                names=tuple(_text(n, 255) for n in names),
                not_before=_number(item.get("not_before")),
                not_after=_number(item.get("not_after")),
                issuer=_text(item.get("issuer"), 255),
                error=_text(item.get("error"), 4000),
                renew_at=_number(item.get("renew_at", 0)),
                ari_id=_ari_id(item.get("ari_id", "")),
                ari_recheck=_number(item.get("ari_recheck", 0)),
                challenge=_challenge(item.get("challenge", "")),
            )
        )
    return UserReport(disable_mail=bool(value["disable_mail"]), outcomes=reports)
