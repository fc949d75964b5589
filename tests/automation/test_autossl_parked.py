"""A website the plugin secures gains a parked domain: the cPanel page says which names its
certificate does not cover, and `le-cp autossl run --user U` orders it again for its names plus
the new ones that pass the pre-check, with the same key. A new name that fails the pre-check is
reported and leaves the working certificate installed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from letsencrypt_cpanel import autossl
from tests.automation.conftest import Bed, make_bed
from tests.automation.domain_changes import park
from tests.automation.test_autossl import names_of
from tests.daemon.test_renewal_cycle import spki
from tests.fixtures.plugin_pages import PageClient, enable_plugin_feature, install_cpanel_page

USER, SITE = "grow", "grow.test"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    yield from make_bed(tmp_path_factory.mktemp("parked"))


@pytest.fixture(scope="module")
def secured(bed: Bed) -> Bed:
    bed.sandbox.add_user(USER, SITE)
    install_cpanel_page(bed.sandbox)
    enable_plugin_feature(bed.sandbox)
    bed.issue(USER, SITE, f"www.{SITE}")
    bed.set("autossl_enabled", "true")
    return bed


def home_row(bed: Bed) -> tuple[dict[str, Any], str]:
    """The website's row in the cPanel page's JSON list, and its Home page's HTML row."""
    client = PageClient.login(bed.sandbox, USER)
    html = client.html().split(f'<tr data-vhost="{SITE}"')[1].split("</tr>")[0]
    return client.rows()[SITE], html


def autossl_run(bed: Bed) -> dict[str, Any]:
    out = json.loads(bed.lecp.ok("autossl", "run", "--user", USER, "--json"))
    assert out["worker_failures"] == {}
    rows = {v["vhost"]: v for v in out["vhosts"]}
    assert set(rows) == {SITE}, rows
    row: dict[str, Any] = rows[SITE]
    return row


def test_a_parked_domain_is_shown_not_covered_then_added_to_the_certificate(secured: Bed) -> None:
    bed = secured
    row, html = home_row(bed)
    # mail.grow.test is on the vhost but is mail clients' name: the Issue form's defaults secure.
    assert row["status"] == "secured" and row["uncovered"] == [], row
    before = bed.sandbox.fetch_site_cert(SITE)

    park(bed.root, USER, "grow-parked.test")
    row, html = home_row(bed)
    assert row["status"] == "partial" and row["managed"] is True
    assert row["uncovered"] == ["grow-parked.test", "www.grow-parked.test"]
    assert "Some names not covered" in html
    assert "Not covered: grow-parked.test, www.grow-parked.test" in html
    listed = json.loads(bed.lecp.ok("ssl", "list", "--user", USER, "--json"))
    assert {r["vhost"]: r["status"] for r in listed}[SITE] == "partial"

    out = autossl_run(bed)
    union = {SITE, f"www.{SITE}", "grow-parked.test", "www.grow-parked.test"}
    assert out["status"] == "secured" and set(out["names"]) == union, out
    after = bed.sandbox.fetch_site_cert("grow-parked.test")
    assert names_of(after) == union
    assert spki(after) == spki(before)  # same key, as a renewal would
    row, _ = home_row(bed)
    assert row["status"] == "secured" and row["uncovered"] == []
    assert set(row["plugin"]["names"]) == union and row["plugin"]["key_type"] == "rsa:2048"

    # Covered now: the next run has nothing to do for it.
    again = json.loads(bed.lecp.ok("autossl", "run", "--user", USER, "--json"))
    assert again["vhosts"] == []


def test_a_parked_domain_failing_the_precheck_leaves_the_certificate_and_is_reported(
    secured: Bed,
) -> None:
    bed = secured
    before = bed.sandbox.fetch_site_cert(SITE)
    names_before = names_of(before)
    park(bed.root, USER, "grow-far.test")
    for name in ("grow-far.test", "www.grow-far.test"):
        bed.pebble.add_a(name, ["10.0.0.1"])

    out = autossl_run(bed)
    assert out["status"] == "nothing_to_do" and out["names"] == [], out
    assert {s["name"]: s["reason"] for s in out["skipped"]} == {
        "grow-far.test": "resolves to 10.0.0.1, not this server",
        "www.grow-far.test": "resolves to 10.0.0.1, not this server",
    }
    kept = bed.sandbox.fetch_site_cert(SITE)
    assert kept.serial_number == before.serial_number and names_of(kept) == names_before
    text = bed.lecp.ok("autossl", "status")
    assert "left off grow-far.test: resolves to 10.0.0.1, not this server" in text
    row, _ = home_row(bed)
    assert row["status"] == "partial"
    assert row["uncovered"] == ["grow-far.test", "www.grow-far.test"]

    # One of a new domain's names passes: it is added, the other is left off and reported.
    bed.pebble.clear_a("www.grow-far.test")
    out = autossl_run(bed)
    assert out["status"] == "secured", out
    assert set(out["names"]) == names_before | {"www.grow-far.test"}
    assert [s["name"] for s in out["skipped"]] == ["grow-far.test"]
    grown = bed.sandbox.fetch_site_cert("www.grow-far.test")
    assert names_of(grown) == names_before | {"www.grow-far.test"}
    assert spki(grown) == spki(before)
    row, _ = home_row(bed)
    assert row["status"] == "partial" and row["uncovered"] == ["grow-far.test"]


def test_a_cycle_without_the_hook_finds_the_parked_domain(secured: Bed) -> None:
    """The daemon's AutoSSL plans only accounts WHM shows something uncovered for: a parked
    domain its vhost's certificate lacks is such a thing (the hook may not have fired)."""
    bed = secured
    park(bed.root, USER, "grow-late.test")
    result = autossl.run_once(bed.settings(), time.time())
    assert result.worker_failures == {}
    rows = {v.vhost: v for v in result.vhosts if v.user == USER}
    assert rows[SITE].status == autossl.SECURED, rows
    assert bed.secured("www.grow-late.test") and bed.secured("grow-late.test")


def test_growing_stops_at_the_names_per_certificate_limit(secured: Bed) -> None:
    bed = secured
    before = names_of(bed.sandbox.fetch_site_cert(SITE))
    bed.set("max_names_per_certificate", str(len(before) + 1))
    try:
        park(bed.root, USER, "grow-max.test")
        out = autossl_run(bed)
    finally:
        bed.set("max_names_per_certificate", "100")
    assert out["status"] == "secured", out
    assert set(out["names"]) == before | {"grow-max.test"}
    skipped = {s["name"]: s["reason"] for s in out["skipped"]}
    assert skipped["www.grow-max.test"] == f"more than {len(before) + 1} names on one certificate"
    assert names_of(bed.sandbox.fetch_site_cert("grow-max.test")) == before | {"grow-max.test"}
