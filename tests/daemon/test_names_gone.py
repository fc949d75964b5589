"""Renewal by `letsencrypt-cpaneld --once` when names leave the account (issue 5): same names
minus the ones the user no longer owns, same key; and a website whose names have all left is
reported (state, `le-cp report`, one mail) and not retried."""

from __future__ import annotations

import json
from typing import Any

from tests.automation.domain_changes import remove_addon, unpark
from tests.automation.test_autossl import names_of
from tests.daemon.conftest import Bed
from tests.daemon.test_renewal_cycle import spki


def record(bed: Bed, user: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (bed.home(user) / ".cpanel/nvdata/letsencrypt-cpanel").read_text()
    )
    return data


def test_a_renewal_drops_a_parked_name_the_user_no_longer_owns(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("parker", "parker.test", parked=["parker-old.test"], email="parker@mail.test")
    bed.issue("parker", "parker.test", "www.parker.test", "parker-old.test", "www.parker-old.test")
    before = sb.fetch_site_cert("parker.test")
    assert "parker-old.test" in names_of(before)

    unpark(bed.root, "parker", "parker-old.test")
    bed.set("renewal_days", "30")  # Pebble's 20-day certificates are due
    out = bed.once()
    assert "1 renewed" in out, out

    after = sb.fetch_site_cert("parker.test")
    assert after.serial_number != before.serial_number
    assert names_of(after) == {"parker.test", "www.parker.test"}
    assert spki(after) == spki(before)
    assert record(bed, "parker")["certificates"]["parker.test"]["names"] == [
        "parker.test",
        "www.parker.test",
    ]
    with bed.state() as db:
        assert [(r.vhost, r.status) for r in db.vhosts("parker")] == [("parker.test", "renewed")]
    mail = bed.mailbox.to("parker@mail.test")
    assert len(mail) == 1 and "renewed" in mail[0]["Subject"]


def test_a_website_whose_names_all_left_is_reported_and_not_retried(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("leaver", "leaver.test", addons=["leaver-shop.test"], email="leaver@mail.test")
    bed.issue("leaver", "leaver-shop.test", "www.leaver-shop.test")
    remove_addon(bed.root, "leaver", "leaver-shop.test")

    out = bed.once()
    assert "leaver leaver-shop.test: names_gone" in out, out
    with bed.state() as db:
        rows = {r.vhost: r for r in db.vhosts("leaver")}
    assert rows["leaver-shop.test"].status == "names_gone"
    mail = bed.mailbox.to("leaver@mail.test")
    assert len(mail) == 1 and "no longer renewed" in mail[0]["Subject"]
    assert "leaver-shop.test" in mail[0].get_content()
    report = json.loads(bed.lecp.ok("report", "--json", "--user", "leaver"))
    row = next(r for r in report["certificates"] if r["vhost"] == "leaver-shop.test")
    assert row["result"] == "Names no longer on the account", row
    checked = record(bed, "leaver")["last_renewal_check"]
    assert checked > 0

    # Due or not, nothing is tried for it again: no worker runs for this account, no mail.
    bed.set("renewal_days", "30")
    out = bed.once()
    assert "leaver-shop.test" not in out, out
    assert record(bed, "leaver")["last_renewal_check"] == checked
    assert record(bed, "leaver")["certificates"]["leaver-shop.test"]["failures"] == 0
    with bed.state() as db:
        again = {r.vhost: r for r in db.vhosts("leaver")}
    assert again["leaver-shop.test"] == rows["leaver-shop.test"]
    assert len(bed.mailbox.to("leaver@mail.test")) == 1
