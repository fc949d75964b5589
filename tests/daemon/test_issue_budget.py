"""Root's side of a user's own order budget (issue_budget.py, the `reserve` and `settle` requests
of root's socket): only the caller's names, only the caller's reservation, the budget's limit
held, the CA's `rateLimited` answers paused for that user alone and for a week at most."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pytest

from letsencrypt_cpanel.budgets import (
    CERTS_PER_DOMAIN,
    DUPLICATES,
    NEW_ACCOUNTS,
    Budgets,
    name_set,
)
from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.issue_budget import LONGEST_PAUSE
from letsencrypt_cpanel.root_service import answer

DIRECTORY = "https://ca.test/directory"
ALICE, BOB = 30001, 30002


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0::/root:/bin/bash\n"
        f"alice:x:{ALICE}:{ALICE}::/home/alice:/bin/bash\n"
        f"bob:x:{BOB}:{BOB}::/home/bob:/bin/bash\n"
    )
    (etc / "userdomains").write_text(
        "alice.test: alice\nshop.alice.test: bob\nbob.test: bob\n*: nobody\n"
    )
    return Settings(
        root=tmp_path,
        acme_directory=DIRECTORY,
        budget_duplicates=2,
        server_addresses=("192.0.2.7",),
    )


def reserve(settings: Settings, uid: int, names: list[str], new: bool = False) -> dict[str, Any]:
    request = {"op": "reserve", "directory": DIRECTORY, "names": names, "new_account": new}
    return answer(settings, request, uid)


def settle(settings: Settings, uid: int, reservation: object, **outcome: Any) -> dict[str, Any]:
    request = {
        "op": "settle",
        "reservation": reservation,
        "account_created": False,
        "ordered": True,
        "issued": True,
        "failed_names": [],
        "rate_limited": None,
        **outcome,
    }
    return answer(settings, request, uid)


def test_the_exact_set_budget_holds_for_a_users_own_orders(settings: Settings) -> None:
    names = ["alice.test", "www.alice.test"]
    for _ in range(2):
        got = reserve(settings, ALICE, names, new=True)
        assert got["ok"] is True and got["reservation"] > 0
        assert settle(settings, ALICE, got["reservation"], account_created=True) == {"ok": True}
    denied = reserve(settings, ALICE, list(reversed(names)))
    assert denied["ok"] is False and denied["denied"] is True
    assert "rate limit duplicates" in denied["error"] and denied["until"] > time.time()
    # Another set of names still fits, and so does another CA (root counts the server's alone).
    assert reserve(settings, ALICE, ["alice.test"])["ok"] is True
    other_ca = {"op": "reserve", "directory": "https://other.test/dir", "names": names}
    assert answer(settings, {**other_ca, "new_account": False}, ALICE) == {
        "ok": True,
        "reservation": 0,
    }
    with Budgets.open(settings) as budgets:
        # Both claimed a new account; a user's counts once a window.
        assert budgets.used(NEW_ACCOUNTS, "ip:192.0.2.7", time.time()) == 1


def test_only_the_callers_names_and_reservations(settings: Settings) -> None:
    # shop.alice.test is bob's (cPanel says so): the longest listed domain decides.
    refused = reserve(settings, ALICE, ["alice.test", "www.shop.alice.test"])
    assert refused == {"ok": False, "error": "not names of alice: www.shop.alice.test"}
    assert reserve(settings, BOB, ["*.shop.alice.test", "shop.alice.test"])["ok"] is True
    assert reserve(settings, ALICE, ["unknown.test"])["ok"] is False
    mine = reserve(settings, ALICE, ["alice.test"])["reservation"]
    assert settle(settings, BOB, mine) == {"ok": False, "error": "no such reservation"}
    assert settle(settings, ALICE, mine) == {"ok": True}
    assert settle(settings, ALICE, mine) == {"ok": False, "error": "no such reservation"}
    # A uid that is no account at all.
    assert reserve(settings, 30999, ["alice.test"])["ok"] is False


def test_one_open_reservation_per_user_and_a_lapsed_one_stays_counted(settings: Settings) -> None:
    first = reserve(settings, ALICE, ["alice.test"], new=True)["reservation"]
    second = reserve(settings, ALICE, ["www.alice.test"], new=True)["reservation"]
    now = time.time()
    with Budgets.open(settings) as budgets:
        assert budgets.user_reservation(first) is None
        held = budgets.user_reservation(second)
        assert held is not None and held.names == ("www.alice.test",)
        assert budgets.used(DUPLICATES, "alice.test", now) == 1  # never told: still counted
        # One new account per user and window, whatever the user claims.
        assert budgets.used(NEW_ACCOUNTS, "ip:192.0.2.7", now) == 1
    assert settle(settings, ALICE, first) == {"ok": False, "error": "no such reservation"}


def test_claims_alone_spend_nobody_elses_budget(settings: Settings) -> None:
    # Ten orders each claiming a new account: the server's new-account budget counts one.
    for _ in range(10):
        got = reserve(settings, ALICE, ["alice.test"], new=True)["reservation"]
        assert settle(settings, ALICE, got, issued=False, account_created=True)["ok"] is True
    with Budgets.open(settings) as budgets:
        assert budgets.used(NEW_ACCOUNTS, "ip:192.0.2.7", time.time()) == 1
    # A name list that would widen or split a budget key is not a list of names.
    for names in (["alice.test,bob.test"], ["alice.test bob.test"], ["ALICE..test"]):
        assert reserve(settings, ALICE, names)["error"] == "not a reservation request"


def test_failures_spend_what_they_spent(settings: Settings) -> None:
    got = reserve(settings, ALICE, ["alice.test", "www.alice.test"])["reservation"]
    failed = settle(
        settings,
        ALICE,
        got,
        issued=False,
        failed_names=["www.alice.test", "www.alice.test", "bob.test"],
    )
    assert failed == {"ok": True}
    now = time.time()
    with Budgets.open(settings) as budgets:
        assert budgets.used("failed_validations", "alice|www.alice.test", now) == 1
        assert budgets.used("failed_validations", "alice|bob.test", now) == 0  # not its names
        assert budgets.used(DUPLICATES, name_set(["alice.test", "www.alice.test"]), now) == 0
    # Not ordered: nothing failed at the CA.
    got = reserve(settings, ALICE, ["alice.test"])["reservation"]
    unordered = settle(
        settings, ALICE, got, issued=False, ordered=False, failed_names=["alice.test"]
    )
    assert unordered == {"ok": True}
    with Budgets.open(settings) as budgets:
        assert budgets.used("failed_validations", "alice|alice.test", time.time()) == 0


def test_a_name_that_failed_too_often_is_refused_before_the_ca(settings: Settings) -> None:
    for _ in range(5):  # Let's Encrypt: 5 failed validations per account and name an hour
        got = reserve(settings, ALICE, ["alice.test"])["reservation"]
        settle(settings, ALICE, got, issued=False, failed_names=["alice.test"])
    denied = reserve(settings, ALICE, ["alice.test"])
    assert denied["denied"] is True and "failed_validations" in denied["error"]


def test_a_rate_limited_answer_pauses_the_users_own_budget_for_a_week_at_most(
    settings: Settings,
) -> None:
    far = int(time.time()) + 90 * 86400
    names = ["alice.test", "www.alice.test"]
    got = reserve(settings, ALICE, names)["reservation"]
    limited = {"detail": "too many certificates for this exact set of identifiers", "until": far}
    assert settle(settings, ALICE, got, issued=False, rate_limited=limited) == {"ok": True}
    with Budgets.open(settings) as budgets:
        until = budgets.paused_until(DUPLICATES, name_set(names), time.time())
    assert time.time() < until <= time.time() + LONGEST_PAUSE + 5
    assert reserve(settings, ALICE, names)["denied"] is True
    # A later answer never shortens the pause.
    soon = {"detail": limited["detail"], "until": int(time.time()) + 60}
    got = reserve(settings, ALICE, ["alice.test"])["reservation"]
    assert settle(settings, ALICE, got, issued=False, rate_limited=soon) == {"ok": True}
    assert reserve(settings, ALICE, names)["denied"] is True

    # Budgets other users share are not one user's to pause: the registered domain's
    # (shop.alice.test is bob's) and the server's new accounts.
    for detail in (
        "too many certificates already issued for alice.test",
        "too many registrations for this IP",
    ):
        got = reserve(settings, BOB, ["shop.alice.test"])["reservation"]
        claim = {"detail": detail, "until": far}
        assert settle(settings, BOB, got, issued=False, rate_limited=claim) == {"ok": True}
    with Budgets.open(settings) as budgets:
        assert budgets.paused_until(CERTS_PER_DOMAIN, "alice.test", time.time()) == 0
    assert reserve(settings, ALICE, ["www.alice.test"], new=True)["ok"] is True


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "reserve"},
        {"op": "reserve", "directory": DIRECTORY, "names": [], "new_account": False},
        {"op": "reserve", "directory": DIRECTORY, "names": ["a" * 300], "new_account": False},
        {"op": "reserve", "directory": DIRECTORY, "names": ["alice.test"], "new_account": 1},
        {"op": "reserve", "directory": 5, "names": ["alice.test"], "new_account": False},
        {"op": "settle", "reservation": True},
        {"op": "settle", "reservation": 1, "account_created": "yes"},
        {
            "op": "settle",
            "reservation": 2**70,  # SQLite cannot hold it: refused, not a crash of the service
            "account_created": False,
            "ordered": True,
            "issued": True,
            "failed_names": [],
            "rate_limited": None,
        },
    ],
)
def test_malformed_requests_are_refused(settings: Settings, request_: dict[str, Any]) -> None:
    got = answer(settings, request_, ALICE)
    assert got["ok"] is False and got["error"].startswith("not a")


def test_le_cp_budgets_shows_what_is_spent_and_paused(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from letsencrypt_cpanel.cli.budget_commands import cmd_budgets

    names = ["alice.test", "www.alice.test"]
    got = reserve(settings, ALICE, names, new=True)["reservation"]
    settle(settings, ALICE, got, account_created=True)
    got = reserve(settings, ALICE, ["alice.test"])["reservation"]
    limited = {"detail": "too many new orders recently", "until": int(time.time()) + 3600}
    settle(settings, ALICE, got, issued=False, rate_limited=limited)

    assert cmd_budgets(settings, argparse.Namespace(json=True, top=20)) == 0
    data = json.loads(capsys.readouterr().out)
    used = {(u["kind"], u["key"]): u["used"] for u in data["used"]}
    assert used[(DUPLICATES, name_set(names))] == 1
    assert used[(NEW_ACCOUNTS, "ip:192.0.2.7")] == 1
    assert used[("new_orders", "alice")] == 2
    assert [(p["kind"], p["key"]) for p in data["paused"]] == [("new_orders", "alice")]
    assert data["limits"][DUPLICATES] == {"count": 2, "window": 7 * 86400}

    assert cmd_budgets(settings, argparse.Namespace(json=False, top=1)) == 0
    text = capsys.readouterr().out
    assert "certificates (per exact set of names): 2 per 7 d" in text
    assert "    1 of 2     duplicates           alice.test,www.alice.test" in text
    assert "... and 3 more" in text  # new accounts, orders, the registered domain
    assert "paused until" in text and "new_orders alice (the CA said: too many new orders" in text
