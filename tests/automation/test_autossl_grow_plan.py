"""AutoSSL's decisions for a plugin certificate whose website has names it does not cover (a
parked or addon domain added): grow it, keeping its names, adding those that pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from letsencrypt_cpanel.autossl_plan import (
    GAINED_NAMES,
    VhostPlan,
    drop_names_over_budget,
    gained_names,
    kept_names,
    needs_certificate,
    parse_plan,
)
from letsencrypt_cpanel.budgets import Budgets, failed_validation_spend
from letsencrypt_cpanel.config import Settings
from tests.automation.test_autossl_plan import MAIN, NOW, host
from tests.automation.test_home_coverage import PLAIN, mine


def test_autossl_grows_the_plugins_certificate_only(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    assert needs_certificate(MAIN, host(PLAIN, days=80), mine(PLAIN), s, NOW) == GAINED_NAMES
    everything = (*PLAIN, "parked.test", "www.parked.test")
    assert needs_certificate(MAIN, host(everything, days=80), mine(everything), s, NOW) == ""
    # Another provider's certificate short of a parked name is its business.
    assert needs_certificate(MAIN, host(PLAIN, days=80), None, s, NOW) == ""
    # The plugin's certificate expired or gone: renewal's, as before.
    assert needs_certificate(MAIN, host(PLAIN, days=-1), mine(PLAIN), s, NOW) == ""
    assert needs_certificate(MAIN, None, mine(PLAIN), s, NOW) == ""
    # Someone else's certificate on the vhost now (not the plugin's id): left alone.
    other = dataclasses.replace(host(PLAIN, days=80).certificate, id="theirs")
    foreign = dataclasses.replace(host(PLAIN, days=80), certificate=other, certificate_pem="X")
    assert needs_certificate(MAIN, foreign, mine(PLAIN), s, NOW) == ""


def test_the_names_a_growing_certificate_keeps_and_adds(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    assert gained_names(MAIN, mine(PLAIN), s) == ["parked.test", "www.parked.test"]
    # A certificate AutoSSL made carries service subdomains: the new domain's come along.
    auto = mine((*PLAIN, "mail.ex.test", "cpanel.ex.test"))
    assert gained_names(MAIN, auto, s) == [
        "parked.test",
        "www.parked.test",
        "cpanel.parked.test",
    ]  # mail.parked.test is not a name of this vhost; webmail. was never on it
    # Names the user no longer owns are not kept; a wildcard stays with its base name.
    old = mine(("ex.test", "*.ex.test", "gone.test", "www.gone.test"))
    assert kept_names(MAIN, old) == ["ex.test", "*.ex.test"]


def test_a_name_kept_past_its_budget_means_nothing_is_added(tmp_path: Path) -> None:
    s = dataclasses.replace(Settings(root=tmp_path), budget_failed_validations=1)
    plan = VhostPlan("ex.test", GAINED_NAMES, ("ex.test", "www.ex.test", "parked.test"), (), PLAIN)
    assert plan.adds_names
    with Budgets.open(s) as budgets:

        def failed(name: str) -> None:
            reservation = budgets.try_reserve([], NOW)
            assert isinstance(reservation, int)
            budgets.settle(reservation, [failed_validation_spend("u", name)], NOW)

        failed("parked.test")
        new_over = drop_names_over_budget(budgets, "u", plan, NOW)
        assert new_over.names == PLAIN and not new_over.adds_names
        assert [n for n, _ in new_over.skipped] == ["parked.test"]
        failed("www.ex.test")
        kept_over = drop_names_over_budget(budgets, "u", plan, NOW + 1)
        assert kept_over.names == PLAIN and not kept_over.adds_names


def test_the_plans_kept_names_from_a_worker_are_names_of_the_plan() -> None:
    summary = {
        "has_account": True,
        "vhosts": [
            {
                "vhost": "ex.test",
                "why": GAINED_NAMES,
                "names": ["ex.test", "parked.test"],
                "skipped": [],
                "kept": ["ex.test", "other.test"],
            },
            {"vhost": "b.test", "why": "no certificate", "names": ["b.test"], "skipped": []},
        ],
    }
    plans = parse_plan(summary).vhosts
    assert plans[0].kept == ("ex.test",) and plans[0].adds_names
    assert plans[1].kept == () and plans[1].adds_names
