"""Rate-limit budgets: reserve before, settle after, defer oldest first, pause on rateLimited."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from letsencrypt_cpanel.budgets import (
    CERTS_PER_DOMAIN,
    DUPLICATES,
    FAILED_VALIDATIONS,
    NEW_ACCOUNTS,
    NEW_ORDERS,
    Attempt,
    Budgets,
    Denied,
    Spend,
    account_spend,
    classify_rate_limit,
    order_spends,
    registered_domain,
)
from letsencrypt_cpanel.config import Settings

NOW = 1_800_000_000.0
HOUR = 3600


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(
        Settings(root=tmp_path),
        acme_directory="https://ca.test/dir",
        budget_new_accounts=2,
        budget_new_orders=3,
        budget_certs_per_domain=2,
        budget_duplicates=2,
        budget_failed_validations=2,
    )


def test_registered_domain_and_rate_limit_kinds() -> None:
    assert registered_domain("www.shop.example.com") == "example.com"
    assert registered_domain("a.b.example.co.uk") == "example.co.uk"
    assert registered_domain("*.example.org") == "example.org"
    assert classify_rate_limit("too many registrations for this IP") == NEW_ACCOUNTS
    assert (
        classify_rate_limit(
            "too many certificates (5) already issued for this exact set of identifiers"
        )
        == DUPLICATES
    )
    assert (
        classify_rate_limit('too many certificates already issued for "example.com"')
        == CERTS_PER_DOMAIN
    )
    assert classify_rate_limit("too many failed authorizations recently") == FAILED_VALIDATIONS
    assert classify_rate_limit("too many new orders recently") == NEW_ORDERS


def test_reserve_all_or_nothing_and_settle_gives_back(settings: Settings) -> None:
    with Budgets.open(settings) as b:
        first = b.try_reserve([account_spend("ip1")], NOW)
        second = b.try_reserve([account_spend("ip1")], NOW)
        assert isinstance(first, int) and isinstance(second, int)
        third = b.try_reserve([account_spend("ip1")], NOW)
        assert isinstance(third, Denied) and third.kind == NEW_ACCOUNTS
        assert third.until == int(NOW) + 3 * HOUR  # when the oldest spend ages out
        # The worker did not need an account after all: the reservation is given back.
        b.settle(second, [], NOW)
        assert isinstance(b.try_reserve([account_spend("ip1")], NOW), int)
        # Another IP, another budget; another directory, another budget.
        assert isinstance(b.try_reserve([account_spend("ip2")], NOW), int)
    with Budgets.open(dataclasses.replace(settings, acme_directory="https://other/dir")) as b:
        assert b.used(NEW_ACCOUNTS, "ip:ip1", NOW) == 0
    with Budgets.open(settings) as b:
        assert b.used(NEW_ACCOUNTS, "ip:ip1", NOW) == 2
        assert b.used(NEW_ACCOUNTS, "ip:ip1", NOW + 3 * HOUR + 1) == 0
        # Nothing is granted if any part does not fit; nothing of it stays reserved.
        spends = [*order_spends("bob", ["a.test"], renewal=False), account_spend("ip1")]
        assert isinstance(b.try_reserve(spends, NOW), Denied)
        assert b.used(NEW_ORDERS, "bob", NOW) == 0


def test_orders_domains_and_duplicates(settings: Settings) -> None:
    with Budgets.open(settings) as b:
        names = ["shop.example.com", "www.shop.example.com"]
        for _ in range(2):
            got = b.try_reserve(order_spends("alice", names, renewal=False), NOW)
            assert isinstance(got, int)
            b.settle(
                got,
                Attempt("alice", tuple(names), False, ordered=True, issued=True).spends("ip"),
                NOW,
            )
        # The same names a third time: the duplicate budget (2) and the domain budget are used.
        denied = b.try_reserve(order_spends("alice", names, renewal=True), NOW)
        assert isinstance(denied, Denied) and denied.kind == DUPLICATES
        other = b.try_reserve(order_spends("carol", ["blog.example.com"], renewal=False), NOW)
        assert isinstance(other, Denied) and other.kind == CERTS_PER_DOMAIN
        # A renewal does not count against the registered domain (Let's Encrypt exempts it).
        b.note_issued(["blog.example.com"], NOW)
        assert b.is_renewal(["BLOG.example.com"])
        assert isinstance(
            b.try_reserve(order_spends("carol", ["blog.example.com"], renewal=True), NOW), int
        )
        # An order that failed counts as an order, not as a certificate.
        failed = Attempt("dave", ("x.test",), False, ordered=True, failed_names=("x.test",))
        assert failed.spends("ip") == [
            Spend(NEW_ORDERS, "dave"),
            Spend(FAILED_VALIDATIONS, "dave|x.test"),
        ]


def test_rate_limited_pauses_until_the_time_given(settings: Settings) -> None:
    with Budgets.open(settings) as b:
        kind = b.rate_limited(
            "too many new orders recently",
            int(NOW) + 600,
            account="erin",
            names=["e.test"],
            ip="ip",
        )
        assert kind == NEW_ORDERS
        denied = b.try_reserve(order_spends("erin", ["e.test"], renewal=False), NOW)
        assert isinstance(denied, Denied) and denied.paused and denied.until == int(NOW) + 600
        assert "paused" in denied.reason
        assert isinstance(
            b.try_reserve(order_spends("erin", ["e.test"], renewal=False), NOW + 601), int
        )
        assert isinstance(b.try_reserve(order_spends("fred", ["f.test"], renewal=False), NOW), int)


def test_deferred_work_keeps_its_place(settings: Settings) -> None:
    denied = Denied(NEW_ACCOUNTS, "ip:ip", int(NOW) + HOUR)
    with Budgets.open(settings) as b:
        b.defer("zed", "z.test", ["z.test"], denied, NOW)
        b.defer("amy", "a.test", ["a.test", "www.a.test"], denied, NOW + 10)
        b.defer("zed", "z.test", ["z.test"], denied, NOW + 20)  # deferred again: keeps `since`
        rows = b.deferred()
        assert [(d.user, d.since) for d in rows] == [("zed", int(NOW)), ("amy", int(NOW) + 10)]
        assert rows[1].names == ("a.test", "www.a.test") and "new_accounts" in rows[1].reason
        b.undefer("zed", "z.test")
        assert [d.user for d in b.deferred()] == ["amy"]
    assert (settings.state_dir / "budgets.sqlite3").stat().st_mode & 0o777 == 0o600
