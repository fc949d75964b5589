"""E-mail to an account's contact address: renewed, failed, or no longer renewed.

One message per user and kind per cycle, listing the websites concerned. Templates are plain
text in `templates/email/<kind>.txt` (`string.Template`; the first line is `Subject: ...`).
Everything put into a message that came from a worker (vhost names, error texts) is untrusted:
control characters are removed and lengths bounded, so it can neither forge a header nor flood
the body.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from .config import Settings
from .errors import Error
from .names import is_wildcard
from .state import UserReport, VhostState

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates" / "email"
RENEWED = "renewed"
FAILED = "failed"
LEFT_ALONE = "left_alone"
KINDS = (RENEWED, FAILED, LEFT_ALONE)
# A failure is mailed at most once per vhost in this many seconds.
FAILURE_MAIL_INTERVAL = 48 * 3600

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
MAX_FIELD = 500
MAX_ITEMS = 200


class TemplateError(Error):
    """A mail template is missing or malformed (an installation problem)."""


@dataclass(frozen=True)
class MailItem:
    """One website in a message."""

    vhost: str
    names: tuple[str, ...] = ()
    not_after: int = 0
    reason: str = ""
    challenge: str = ""  # how the CA checks the names ("dns-01", "http-01"), "" when unknown


_CHALLENGE_WORDS = {"dns-01": "through DNS (dns-01)", "http-01": "over HTTP (http-01)"}


def clean(text: str, limit: int = MAX_FIELD) -> str:
    """One line of untrusted text, safe in a header or a body line."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _date(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch)) if epoch > 0 else "an unknown date"


def _site_lines(kind: str, items: list[MailItem]) -> str:
    lines = []
    for item in items[:MAX_ITEMS]:
        names = ", ".join(clean(n, 255) for n in item.names[:20]) or clean(item.vhost, 255)
        head = f"  - {clean(item.vhost, 255)} ({names})"
        if kind == RENEWED:
            lines.append(f"{head}\n    valid until {_date(item.not_after)}")
        elif kind == FAILED:
            how = _CHALLENGE_WORDS.get(item.challenge)
            lines.append(
                f"{head}\n    the current certificate expires on {_date(item.not_after)}"
                + (f"\n    names checked {how}" if how else "")
                + f"\n    reason: {clean(item.reason) or 'not given'}"
            )
        else:
            lines.append(f"{head}\n    {clean(item.reason)}")
    if len(items) > MAX_ITEMS:
        lines.append(f"  ... and {len(items) - MAX_ITEMS} more")
    return "\n".join(lines)


def load_template(
    kind: str, folder: Path = TEMPLATE_DIR
) -> tuple[string.Template, string.Template]:
    """(subject, body) templates of `kind`. Raises TemplateError."""
    if kind not in KINDS:
        raise TemplateError(f"There is no mail of kind {kind!r}.")
    path = folder / f"{kind}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"The mail template {path} cannot be read: {exc.strerror}") from exc
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise TemplateError(f"The mail template {path} must start with a 'Subject:' line.")
    return string.Template(first[len("Subject:") :].strip()), string.Template(body.lstrip("\n"))


def compose(
    kind: str,
    *,
    to: str,
    sender: str,
    user: str,
    hostname: str,
    items: list[MailItem],
    folder: Path = TEMPLATE_DIR,
) -> EmailMessage:
    """The message of `kind` about `items` for `user`, addressed to `to`. Raises TemplateError."""
    subject, body = load_template(kind, folder)
    values = {
        "user": clean(user, 64),
        "hostname": clean(hostname, 255),
        "first_site": clean(items[0].vhost, 255) if items else "",
        "count": str(len(items)),
        "more": f" and {len(items) - 1} more" if len(items) > 1 else "",
        "sites": _site_lines(kind, items),
    }
    try:
        subject_text = clean(subject.substitute(values), 200)
        body_text = body.substitute(values)
    except (KeyError, ValueError) as exc:
        raise TemplateError(f"The mail template {kind}.txt uses an unknown field: {exc}") from exc
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject_text
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=clean(hostname, 255) or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body_text)
    return message


def default_sender(hostname: str) -> str:
    return f"letsencrypt-cpanel@{clean(hostname, 255) or 'localhost'}"


_LEFT_ALONE_REASONS = {
    "replaced": "another certificate was installed on this website; it was left in place",
    "names_gone": "none of its names belong to the account any more",
}


def plan_mails(
    report: UserReport,
    before: dict[str, VhostState],
    settings: Settings,
    *,
    mailed_at: Callable[[str, str], int],
    now: int,
) -> list[tuple[str, list[MailItem]]]:
    """Which messages a worker's report calls for, as (kind, items): renewals (unless the server
    or the user turned them off), failures (each vhost at most once per 48 hours), and websites
    no longer renewed (when that happens, or is first seen; at most once per 48 hours too).
    `before` is the state before this report; `mailed_at(vhost, kind)` when that last went."""
    renewed: list[MailItem] = []
    failed: list[MailItem] = []
    left: list[MailItem] = []
    for out in report.outcomes:
        # A wildcard can only be checked through DNS (RFC 8555 §7.1.3); otherwise the method the
        # worker reports, when it knows it (else the mail gives both advices).
        challenge = "dns-01" if any(is_wildcard(n) for n in out.names) else out.challenge
        item = MailItem(out.vhost, out.names, out.not_after, out.error, challenge)
        if out.action == RENEWED:
            renewed.append(item)
        elif out.action == FAILED:
            if now - mailed_at(out.vhost, FAILED) >= FAILURE_MAIL_INTERVAL:
                failed.append(item)
        elif out.action in _LEFT_ALONE_REASONS:
            old = before.get(out.vhost)
            changed = old is None or old.status != out.action
            if changed and now - mailed_at(out.vhost, LEFT_ALONE) >= FAILURE_MAIL_INTERVAL:
                left.append(MailItem(out.vhost, out.names, 0, _LEFT_ALONE_REASONS[out.action]))
    mails: list[tuple[str, list[MailItem]]] = []
    if renewed and settings.send_success_mail and not report.disable_mail:
        mails.append((RENEWED, renewed))
    if failed and settings.send_failure_mail:
        mails.append((FAILED, failed))
    if left and settings.send_failure_mail:
        mails.append((LEFT_ALONE, left))
    return mails
