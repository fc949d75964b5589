"""AutoSSL over 20 sandbox accounts and 60 vhosts against Pebble, some broken on purpose: every
good vhost secured, every broken one reported with its reason, and a budget of 5 new accounts
spent exactly (the rest deferred to the next run, then secured)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from cryptography import x509

from letsencrypt_cpanel import autossl, cpanel_hooks
from letsencrypt_cpanel.autossl_plan import GAINED_NAMES
from letsencrypt_cpanel.budgets import Budgets
from tests.automation.conftest import Bed, make_bed
from tests.fixtures.sandbox import run_cli

USERS = [f"as{i:04d}" for i in range(1, 21)]
REDIRECTING = "a1-as0002.test"  # its challenge path redirects elsewhere
EXCLUDED = "a1-as0003.test"  # every name of it matches an exclusion pattern
ELSEWHERE = "a1-as0004.test"  # resolves to 10.0.0.1; its other names are fine


def vhost_domains() -> list[str]:
    return [d for u in USERS for d in (f"{u}.test", f"a1-{u}.test", f"a2-{u}.test")]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    yield from make_bed(tmp_path_factory.mktemp("autossl"))


@pytest.fixture(scope="module")
def populated(bed: Bed) -> Bed:
    run_cli("populate", str(bed.root), "--users", "20", "--vhosts", "60", "--prefix", "as")
    home = bed.root / "home/as0002"
    htaccess = home / REDIRECTING / ".htaccess"
    htaccess.write_text("RedirectMatch 302 ^/\\.well-known/(.*)$ http://elsewhere.test/$1\n")
    os.chown(htaccess, home.stat().st_uid, home.stat().st_gid)
    bed.pebble.add_a(ELSEWHERE, ["10.0.0.1"])
    bed.set("autossl_exclude", "*a1-as0003.test,*a1-as0003.as0003.test")
    bed.set("autossl_enabled", "true")
    return bed


def accounts_registered(bed: Bed) -> list[str]:
    directory = bed.settings().acme_directory
    found = []
    for user in USERS:
        path = bed.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
        if path.exists() and directory in json.loads(path.read_text()).get("accounts", {}):
            found.append(user)
    return found


def names_of(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName))


def by_vhost(result: autossl.AutoSSLResult) -> dict[str, autossl.VhostResult]:
    return {v.vhost: v for v in result.vhosts}


def test_first_run_spends_exactly_the_account_budget(populated: Bed) -> None:
    bed = populated
    bed.set("budget_new_accounts", "5")
    restarts = bed.commands("restartsrv_httpd")
    result = autossl.run_once(bed.settings(), time.time())
    assert result.worker_failures == {}
    assert result.accounts_created == 5
    assert accounts_registered(bed) == USERS[:5]
    rows = by_vhost(result)
    assert set(rows) == set(vhost_domains())

    deferred = result.with_status(autossl.DEFERRED)
    assert {v.user for v in deferred} == set(USERS[5:]) and len(deferred) == 45
    assert all("new_accounts" in v.error for v in deferred)
    with Budgets.open(bed.settings()) as budgets:
        assert len(budgets.deferred()) == 45

    # The broken ones: reported with the reason, nothing sent to the CA for them.
    redirect = rows[REDIRECTING]
    assert redirect.status == autossl.NOTHING_TO_DO and redirect.names == ()
    assert all("redirects (302" in reason for _, reason in redirect.skipped), "\n".join(
        f"{n}: {r}" for n, r in redirect.skipped
    )
    excluded = rows[EXCLUDED]
    assert excluded.status == autossl.NOTHING_TO_DO
    assert all("excluded by the pattern" in reason for _, reason in excluded.skipped)
    elsewhere = rows[ELSEWHERE]
    assert elsewhere.status == autossl.SECURED
    assert dict(elsewhere.skipped) == {ELSEWHERE: "resolves to 10.0.0.1, not this server"}
    assert ELSEWHERE not in elsewhere.names and f"www.{ELSEWHERE}" in elsewhere.names

    secured = {v.vhost for v in result.with_status(autossl.SECURED)}
    good_first = {d for d in vhost_domains()[:15]} - {REDIRECTING, EXCLUDED}
    assert secured == good_first
    # Proxy subdomains resolve here, so they are on the certificate too.
    assert {"cpanel.as0001.test", "webmail.as0001.test"} <= names_of(
        populated.sandbox.fetch_site_cert("as0001.test")
    )
    assert not bed.secured(REDIRECTING) and not bed.secured(f"www.{EXCLUDED}")
    # One Apache restart for the whole run, and cPanel's no-restart flag is gone.
    assert bed.commands("restartsrv_httpd") == restarts + 1
    assert not (bed.root / "var/cpanel/mgmt_queue/apache_update_no_restart").exists()

    status = json.loads(bed.lecp.ok("autossl", "status", "--json"))
    assert len(status["deferred"]) == 45
    text = bed.lecp.ok("autossl", "status")
    assert "AutoSSL is on" in text and f"left off {ELSEWHERE}: resolves to 10.0.0.1" in text
    assert "deferred as0020 a2-as0020.test: rate limit new_accounts" in text
    assert status["report"]["users"]["as0002"]["vhosts"]


def test_next_run_secures_the_deferred_and_every_good_vhost(populated: Bed) -> None:
    bed = populated
    bed.set("budget_new_accounts", "100")
    result = autossl.run_once(bed.settings(), time.time())
    assert result.worker_failures == {}
    assert result.accounts_created == 15
    assert accounts_registered(bed) == USERS
    assert len(result.with_status(autossl.SECURED)) == 45
    assert result.with_status(autossl.DEFERRED) == []
    with Budgets.open(bed.settings()) as budgets:
        assert budgets.deferred() == []

    broken = {REDIRECTING, EXCLUDED}
    for domain in vhost_domains():
        if domain in broken:
            assert not bed.secured(domain), domain
            continue
        name = f"www.{domain}" if domain == ELSEWHERE else domain
        assert bed.secured(name), domain
    # Reported again with their reasons; secured vhosts are now renewal's, not AutoSSL's,
    # except the one whose certificate lacks a name of it: that name is tried again each run
    # (its DNS may have been fixed), and reported while it still fails the pre-check.
    short = {v.vhost for v in result.vhosts if v.status == autossl.NOTHING_TO_DO}
    assert short == broken | {ELSEWHERE}
    elsewhere = by_vhost(result)[ELSEWHERE]
    assert elsewhere.why == GAINED_NAMES
    assert dict(elsewhere.skipped) == {ELSEWHERE: "resolves to 10.0.0.1, not this server"}

    again = autossl.run_once(bed.settings(), time.time())
    assert {v.vhost for v in again.vhosts} == broken | {ELSEWHERE}
    assert again.accounts_created == 0
    # The report keeps what is still wrong, nothing stale: secured accounts have no rows.
    report = autossl.load_report(bed.settings())["users"]
    assert report["as0010"]["vhosts"] == [] and report["as0002"]["vhosts"]


def test_le_cp_run_for_one_user(populated: Bed) -> None:
    bed = populated
    text = bed.lecp.ok("autossl", "run", "--user", "as0003")
    assert f"as0003 {EXCLUDED}: nothing_to_do" in text and "excluded by the pattern" in text
    proc = bed.lecp.run("autossl", "run", "--user", "as0002", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [v["vhost"] for v in data["vhosts"]] == [REDIRECTING]
    assert "redirects" in data["vhosts"][0]["skipped"][0]["reason"]


def test_a_new_account_queued_by_the_hook_is_secured(populated: Bed) -> None:
    bed = populated
    bed.sandbox.add_user("hooked", "hooked.test", addons=["shop-hooked.test"])
    assert bed.hook("hooked").startswith("1 ")
    # What the daemon does each minute: drain the queue, run AutoSSL for those accounts.
    queued = cpanel_hooks.take_queued(bed.settings())
    assert queued == ["hooked"]
    result = autossl.run_once(bed.settings(), time.time(), users=queued)
    assert {v.vhost: v.status for v in result.vhosts} == {
        "hooked.test": autossl.SECURED,
        "shop-hooked.test": autossl.SECURED,
    }
    assert bed.secured("www.shop-hooked.test")
