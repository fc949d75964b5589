"""Root's side of AutoSSL between the workers: reserve for plans, settle from reports."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from letsencrypt_cpanel import autossl
from letsencrypt_cpanel.autossl_plan import (
    RATE_LIMITED,
    IssueOutcome,
    IssueReport,
    UserPlan,
    VhostPlan,
    parse_plan,
)
from letsencrypt_cpanel.budgets import NEW_ORDERS, Budgets
from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.errors import WorkerError

NOW = 1_800_000_000.0


def plan(*vhosts: str, has_account: bool = True) -> UserPlan:
    return UserPlan(
        has_account, tuple(VhostPlan(v, "no certificate", (v, f"www.{v}"), ()) for v in vhosts)
    )


def settings(tmp: Path, **limits: int) -> Settings:
    return dataclasses.replace(Settings(root=tmp), acme_directory="https://ca.test/d", **limits)


def test_orders_over_budget_wait_and_go_first_next_time(tmp_path: Path) -> None:
    s = settings(tmp_path, budget_new_orders=2)
    plans = {"bob": plan("b1.test", "b2.test", "b3.test"), "amy": plan("a1.test")}
    with Budgets.open(s) as budgets:
        result = autossl.AutoSSLResult()
        granted = autossl._reserve(budgets, plans, "ip", NOW, result)
        assert [(g.user, [x.plan.vhost for x in g.grants]) for g in granted] == [
            ("amy", ["a1.test"]),
            ("bob", ["b1.test", "b2.test"]),
        ]
        assert [(v.vhost, v.status) for v in result.vhosts] == [("b3.test", autossl.DEFERRED)]
        # The workers did it all: settled as spent.
        for g in granted:
            outcomes = tuple(
                IssueOutcome(x.plan.vhost, x.plan.names, True, ordered=True) for x in g.grants
            )
            autossl._settle(budgets, g, IssueReport(False, outcomes), "ip", NOW)
        # Three hours later bob's budget is back; the deferred vhost goes first.
        later = NOW + 3 * 3600 + 1
        plans = {"bob": plan("b0.test", "b3.test", "b4.test")}
        granted = autossl._reserve(budgets, plans, "ip", later, autossl.AutoSSLResult())
        assert [x.plan.vhost for x in granted[0].grants] == ["b3.test", "b0.test"]
        assert [d.vhost for d in budgets.deferred()] == ["b4.test"]


def test_rate_limited_answer_pauses_the_budget_and_stops_the_rest(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with Budgets.open(s) as budgets:
        granted = autossl._reserve(
            budgets,
            {"cat": plan("c1.test", "c2.test", has_account=False)},
            "ip",
            NOW,
            autossl.AutoSSLResult(),
        )
        limited = IssueOutcome(
            "c1.test",
            ("c1.test", "www.c1.test"),
            False,
            "The certificate authority's rate limit was reached: too many new orders recently.",
            RATE_LIMITED,
            True,
            "",
            int(NOW) + 900,
        )
        rows = autossl._settle(budgets, granted[0], IssueReport(True, (limited,)), "ip", NOW)
        assert [(r.vhost, r.status) for r in rows] == [
            ("c1.test", autossl.FAILED),
            ("c2.test", autossl.FAILED),
        ]
        assert "rate limit" in rows[1].error
        assert budgets.paused_until(NEW_ORDERS, "cat", NOW) == int(NOW) + 900
        assert budgets.used("new_accounts", "ip:ip", NOW) == 1  # the account was made
        assert budgets.used(NEW_ORDERS, "cat", NOW) == 1  # one order reached the CA
        again = autossl.AutoSSLResult()
        assert autossl._reserve(budgets, {"cat": plan("c2.test")}, "ip", NOW + 60, again) == []
        assert "paused" in again.vhosts[0].error


def test_a_hostile_plan_is_refused() -> None:
    for bad in (
        [],
        {"has_account": "yes", "vhosts": []},
        {"has_account": True, "vhosts": [{"vhost": 1, "why": "", "names": [], "skipped": []}]},
        {
            "has_account": True,
            "vhosts": [{"vhost": "a", "why": "", "names": ["x" * 300], "skipped": []}],
        },
        {
            "has_account": True,
            "vhosts": [{"vhost": "a", "why": "", "names": [], "skipped": [["a"]]}],
        },
    ):
        with pytest.raises(WorkerError):
            parse_plan(bad)  # type: ignore[arg-type]


def test_a_deferred_vhost_secured_meanwhile_leaves_the_list(tmp_path: Path) -> None:
    s = settings(tmp_path, budget_new_orders=1)
    with Budgets.open(s) as budgets:
        autossl._reserve(
            budgets, {"gil": plan("g1.test", "g2.test")}, "ip", NOW, autossl.AutoSSLResult()
        )
        assert [d.vhost for d in budgets.deferred()] == ["g2.test"]
        # The user issued g2 from the cPanel page: the next plan no longer has it.
        autossl._reserve(budgets, {"gil": plan()}, "ip", NOW + 60, autossl.AutoSSLResult())
        assert budgets.deferred() == []
