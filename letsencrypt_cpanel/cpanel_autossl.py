"""Keeping cPanel's own AutoSSL off the names the plugin secures, so the two never replace each
other's certificates (issue 6, "Coexistence with cPanel's own AutoSSL").

cPanel keeps a per-user list of domains its AutoSSL leaves alone; WHM's
`add_autossl_user_excluded_domains` adds to it. The WHM page offers it once; the daemon repeats
it after each cycle for the users it ran (setting `cpanel_autossl_exclude_managed`), so names
the plugin secured since are covered too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .cpanel.whm import WhmAPI
from .errors import Error

# Rows in these states are no longer the plugin's: cPanel's AutoSSL may have them back.
NOT_OURS = frozenset({"names_gone", "replaced"})


def managed_names(rows: Iterable[tuple[str, str, Sequence[str]]]) -> dict[str, list[str]]:
    """{user: names} from (user, status, names) rows; wildcards left out (cPanel's list holds
    domains), each name once, in order."""
    per_user: dict[str, list[str]] = {}
    for user, status, names in rows:
        if status in NOT_OURS:
            continue
        per_user.setdefault(user, []).extend(n for n in names if not n.startswith("*."))
    return {user: list(dict.fromkeys(names)) for user, names in per_user.items() if names}


def exclude_managed(whm: WhmAPI, per_user: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Ask WHM to keep cPanel's AutoSSL off each user's names; {user: error} for the failures
    (one user's refusal never stops the others)."""
    failures: dict[str, str] = {}
    for user, names in sorted(per_user.items()):
        try:
            whm.add_autossl_user_excluded_domains(user, list(names))
        except Error as exc:
            failures[user] = str(exc)
    return failures
