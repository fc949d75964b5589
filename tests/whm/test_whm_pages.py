"""The WHM page through the sandbox's page host, as cpsrvd runs it (as root, REMOTE_USER = the
WHM user, the launcher root-owned 0755): a reseller without `all` sees its own accounts only and
gets 403 on options and actions; root sees both lists and the chart; renew-now runs as the user
against Pebble and shows its outcome; cPanel's AutoSSL is reported and kept off the plugin's
websites; `le-cp report --json` says what the page says."""

from __future__ import annotations

import json
import time

from cpanel_sandbox import whm_autossl
from letsencrypt_cpanel.state import VhostState
from tests.fixtures.lecp import LeCp
from tests.fixtures.plugin_pages import new_user
from tests.fixtures.sandbox import RunningSandbox
from tests.whm.pages import WhmClient, add_reseller, put_state, set_owner

DAY = 86400


def _row(user: str, vhost: str, status: str, days_left: int, error: str = "") -> VhostState:
    now = int(time.time())
    failures = 1 if status == "failed" else 0
    return VhostState(
        user, vhost, status, (vhost, f"www.{vhost}"), now - 60 * DAY, now + days_left * DAY,
        "Pebble Intermediate", failures, error, now - 100, now + 3600 if failures else 0,
    )  # fmt: skip


def test_reseller_without_all_sees_own_accounts_only(whm_page: RunningSandbox) -> None:
    reseller, _ = new_user(whm_page, "resl")
    add_reseller(whm_page, reseller, ["list-accts", "create-acct"])
    mine, mine_domain = new_user(whm_page, "rmine")
    other, other_domain = new_user(whm_page, "rother")
    set_owner(whm_page, mine, reseller)
    put_state(
        whm_page,
        _row(mine, mine_domain, "not_due", 50),
        _row(other, other_domain, "failed", 3, "boom"),
    )
    client = WhmClient.login(whm_page, reseller)
    data = client.data()
    assert data["user"] == reseller and data["full_access"] is False
    assert {r["user"] for r in data["certificates"]} == {mine}
    assert {u["user"] for u in data["uncovered"]} == {mine}  # nothing installed on it yet
    html = client.html()
    assert mine_domain in html and other_domain not in html and "tab-options" not in html

    config = whm_page.root / "etc/letsencrypt-cpanel.conf"
    before = config.read_text()
    token = client.csrf_token()
    for action in ("options", "actions"):
        assert client.get({"action": action}).status == 403
        assert client.get({"action": action}, json_api=True).status == 403
    for action in ("save_options", "renew", "autossl", "service_cert", "exclude_cpanel_autossl"):
        reply = client.post({"action": action, "user": mine, "renewal_days": "9"}, csrf=token)
        assert reply.status == 403, action
        reply = client.post(json_body={"action": action, "user": mine}, json_api=True, csrf=token)
        assert reply.status == 403 and reply.json()["success"] is False
    assert config.read_text() == before  # nothing saved (other tests share this sandbox)


def test_root_sees_both_lists_and_the_chart(whm_page: RunningSandbox) -> None:
    ok_user, ok_domain = new_user(whm_page, "rootok")
    bad_user, bad_domain = new_user(whm_page, "rootbad", addons=["rootbad-shop.test"])
    put_state(
        whm_page,
        _row(ok_user, ok_domain, "renewed", 20),
        _row(bad_user, bad_domain, "failed", 2, "DNS problem: NXDOMAIN"),
    )
    client = WhmClient.login(whm_page)
    data = client.data()
    assert data["full_access"] is True and data["user"] == "root"
    rows = {r["vhost"]: r for r in data["certificates"]}
    assert rows[ok_domain]["result"] == "Renewed" and not rows[ok_domain]["failed"]
    assert rows[bad_domain]["failed"] and "NXDOMAIN" in rows[bad_domain]["result"]
    uncovered = {u["domain"]: u for u in data["uncovered"]}
    assert uncovered[bad_domain]["reason"].endswith("last attempt failed: DNS problem: NXDOMAIN")
    assert uncovered["rootbad-shop.test"]["reason"] == "No certificate installed"
    assert uncovered["rootbad-shop.test"]["vhost"] != "rootbad-shop.test"  # its backing sub
    weeks = data["expiry_weeks"]
    assert len(weeks) == 13 and sum(w["failed"] for w in weeks) >= 1
    assert weeks[2]["total"] >= 1  # the one renewed, 20 days left

    html = client.html({"status": "failed"})
    assert 'id="expiry-chart"' in html and html.count('<g class="week"') == 13
    certificates = html.split('id="certificates"')[1].split('id="uncovered"')[0]
    assert f'data-vhost="{bad_domain}"' in certificates
    assert f'data-vhost="{ok_domain}"' not in certificates
    assert 'id="uncovered"' in html and "rootbad-shop.test" in html
    assert 'id="cpanel-autossl"' in html


def test_renew_now_runs_as_the_user_and_shows_the_outcome(
    whm_page: RunningSandbox, whm_configured: LeCp
) -> None:
    user, domain = new_user(whm_page, "whmrenew")
    whm_configured.ok("ssl", "issue", "--user", user, domain, f"www.{domain}")
    client = WhmClient.login(whm_page)
    reply = client.post({"action": "renew", "user": user, "force": "1"})
    assert reply.status == 200, reply.body[:800]
    text = reply.body.decode()
    assert 'class="alert alert-success" id="outcome"' in text
    assert f"{domain}: renewed (expires" in text
    row = next(r for r in client.data()["certificates"] if r["user"] == user)
    assert row["status"] == "renewed" and row["installed"] and row["key_type"] == "rsa:2048"
    assert row["issuer"] and row["last_attempt"] >= int(time.time()) - 300
    assert all(u["user"] != user for u in client.data()["uncovered"])

    reply = client.post({"action": "renew", "user": "nosuchuser"}, json_api=True)
    assert reply.status == 400 and "no account" in reply.json()["errors"][0]
    assert client.post({"action": "renew", "user": user}, csrf="forged").status == 403


def test_cpanel_autossl_is_reported_and_kept_off_the_plugins_websites(
    whm_page: RunningSandbox,
) -> None:
    user, domain = new_user(whm_page, "coexist")
    put_state(whm_page, _row(user, domain, "not_due", 60))
    client = WhmClient.login(whm_page)
    whm_autossl.set_provider(whm_page.root, "cPanel")
    state = client.data()["cpanel_autossl"]
    assert state["enabled"] is True and "cPanel" in state["provider"]
    assert "AutoSSL is <strong>on</strong>" in client.html()

    reply = client.post({"action": "exclude_cpanel_autossl"}, json_api=True)
    assert reply.status == 200, reply.body[:500]
    assert reply.json()["data"]["data"][user] == sorted([domain, f"www.{domain}"])
    excluded = whm_autossl.excluded_domains(whm_page.root, user)
    assert set(excluded) == {domain, f"www.{domain}"}

    whm_autossl.set_provider(whm_page.root, "")
    assert client.data()["cpanel_autossl"]["enabled"] is False
    assert "cPanel's own AutoSSL is off" in client.html()


def test_le_cp_report_mirrors_the_page(whm_page: RunningSandbox, whm_configured: LeCp) -> None:
    user, domain = new_user(whm_page, "lecprep")
    put_state(whm_page, _row(user, domain, "failed", 4, "rate limited"))
    report = json.loads(whm_configured.ok("report", "--json", "--user", user))
    assert [r["vhost"] for r in report["certificates"]] == [domain]
    assert report["certificates"][0]["failed"] is True
    assert len(report["expiry_weeks"]) == 13
    page = WhmClient.login(whm_page).data({"q": domain})
    assert [r["vhost"] for r in page["certificates"]] == [domain]
    text = whm_configured.ok("report", "--user", user, "--status", "failed")
    assert domain in text and "rate limited" in text


def test_service_certificate_and_autossl_actions_show_their_outcome(
    whm_page: RunningSandbox, whm_configured: LeCp
) -> None:
    user, _ = new_user(whm_page, "whmauto")
    client = WhmClient.login(whm_page)
    page = client.data({"action": "actions"})
    assert user in page["users"]
    assert {s["service"] for s in page["services"]} >= {"cpanel", "exim", "dovecot", "ftp"}

    reply = client.post({"action": "autossl", "user": user}, json_api=True)
    assert reply.status in (200, 502), reply.body[:800]
    body = reply.json()
    assert body["data"]["title"].startswith(f"AutoSSL for {user}")
    assert any(row["user"] == user for row in body["data"]["data"]), body
    html = client.post({"action": "autossl", "user": user}).body.decode()
    assert 'id="outcome"' in html and f"AutoSSL for {user}" in html

    reply = client.post({"action": "service_cert", "force": "1"}, json_api=True)
    assert reply.status in (200, 502), reply.body[:800]
    assert reply.json()["data"]["title"].startswith("Service certificate")
    assert 'id="services"' in client.html({"action": "actions"})
