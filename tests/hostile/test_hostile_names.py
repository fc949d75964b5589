"""Hostile names, through both doors a user has (`le-cp ssl issue` run by root for the user, and
the cPanel page's JSON API through cpsrvd's page host): each is refused with a reason that names
what is wrong, and Pebble's log proves no order was placed for any of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.lecp import LeCp
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.plugin_pages import PageClient
from tests.fixtures.sandbox import RunningSandbox
from tests.hostile.conftest import pebble_posts

LONG_LABEL = "a" * 64


def hostile_names(mine: str, theirs: str) -> list[tuple[str, str]]:
    """(name, what the refusal must say) for an account owning `mine`, next to `theirs`."""
    head = mine.split(".")[0]
    return [
        (mine.replace("h", "\u04bb", 1), "is not a domain of this cPanel account"),  # Cyrillic
        (mine.replace("x", "\u0445", 1), "is not a domain of this cPanel account"),  # Cyrillic
        (theirs.upper(), "is not a domain of this cPanel account"),
        (theirs.title() + ".", "is not a domain of this cPanel account"),
        ("www." + theirs, "is not a domain of this cPanel account"),
        ("sub." + mine, "is not a domain of this cPanel account"),
        (mine + "..", "contains '/' or '..'"),
        ("." + mine, "has an empty label"),
        (f"{head}\u200d.test", "contains spaces or control characters"),  # zero-width joiner
        (f"{head}\u202e.test", "contains spaces or control characters"),  # right-to-left override
        (("a" * 62 + ".") * 4 + mine, "is longer than 253 characters"),  # 254+ characters
        (f"{LONG_LABEL}.{mine}", "has a label longer than 63 characters"),
        (f"www.*.{mine}", "has a '*' that is not a leading wildcard label"),
        (f"*{mine}", "has a '*' that is not a leading wildcard label"),
        (f"*.{theirs}", "is not a domain of this cPanel account"),
        ("127.0.0.1", "is an IP address"),
        ("::1", "is an IP address"),
        ("10.0.0.1.", "is an IP address"),
        ("-bad-." + mine, "has an invalid label"),
        ("under_score." + mine, "has an invalid label"),
        ("localhost", "is not a fully qualified domain name"),
        ("xn--zz.test", "not"),  # invalid punycode: refused, whichever check sees it first
    ]


@pytest.fixture
def two_accounts(account: Callable[..., tuple[str, str]]) -> tuple[str, str, str]:
    """(user, the user's main domain, another account's main domain)."""
    user, mine = account("hxnames")
    _, theirs = account("hxother")
    return user, mine, theirs


def test_le_cp_refuses_hostile_names_before_the_ca_is_asked(
    lecp: LeCp, pebble: PebbleInstance, two_accounts: tuple[str, str, str]
) -> None:
    user, mine, theirs = two_accounts
    orders = pebble_posts(pebble, "/order-plz")
    for name, says in hostile_names(mine, theirs):
        proc = lecp.run("ssl", "issue", "--user", user, "--", name)
        assert proc.returncode == 1, (name, proc.stdout)
        assert says in proc.stderr, (name, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    # Mixed case and a trailing dot are the same name: it would be issued, not refused. Next to a
    # hostile name, the whole request is refused.
    proc = lecp.run("ssl", "issue", "--user", user, mine.upper() + ".", "www." + theirs)
    assert proc.returncode == 1 and "www." + theirs in proc.stderr
    assert pebble_posts(pebble, "/order-plz") == orders


def test_the_page_refuses_hostile_names_before_the_ca_is_asked(
    cpanel_page: RunningSandbox, pebble: PebbleInstance, two_accounts: tuple[str, str, str]
) -> None:
    user, mine, theirs = two_accounts
    client = PageClient.login(cpanel_page, user)
    orders = pebble_posts(pebble, "/order-plz")
    token = client.csrf_token()
    for name, _says in hostile_names(mine, theirs):
        reply = client.post(
            {"action": "issue", "vhost": mine, "name": [mine, name]}, json_api=True, csrf=token
        )
        assert reply.status in (400, 403), (name, reply.status, reply.body[:300])
        errors = reply.json()["errors"]
        assert len(errors) == 1 and "Traceback" not in errors[0], errors
        assert "Untick it" in errors[0] or "is not a name of the website" in errors[0], errors
    # Another account's website in the vhost field, with its own name.
    reply = client.post(
        {"action": "issue", "vhost": theirs, "name": theirs}, json_api=True, csrf=token
    )
    assert reply.status == 404 and "not one of the websites" in reply.json()["errors"][0]
    assert pebble_posts(pebble, "/order-plz") == orders
