"""The WHM page in Chromium: root logs in to WHM, opens the plugin, sees the chart and both
lists, sorts and filters without JavaScript, saves an option, and runs renew-now for an account.
A screenshot of the page is kept (artifacts/whm-home.png, artifacts/whm-options.png)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Browser

from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.state import VhostState
from tests.browser.conftest import ARTIFACTS
from tests.fixtures.lecp import configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.plugin_pages import new_user
from tests.fixtures.sandbox import RunningSandbox
from tests.whm.pages import PAGE_PATH, install_whm_page, put_state

pytestmark = pytest.mark.browser
DAY = 86400


def test_whm_page_in_chromium(
    sandbox: RunningSandbox, pebble: PebbleInstance, browser: Browser
) -> None:
    lecp = configure(sandbox, pebble)
    install_whm_page(sandbox)
    user, domain = new_user(sandbox, "whmbrowser")
    lecp.ok("ssl", "issue", "--user", user, domain)
    now = int(time.time())
    others = []
    for i, days in enumerate((3, 10, 10, 24, 45, 70, 88)):
        other, other_domain = new_user(sandbox, "whmchart")
        failed = i in (0, 3)
        others.append(other_domain)
        put_state(sandbox, VhostState(
            other, other_domain, "failed" if failed else "not_due", (other_domain,),
            now - 60 * DAY, now + days * DAY, "Pebble Intermediate", int(failed),
            "Connection refused" if failed else "", now - 600, now + 3600 if failed else 0,
        ))  # fmt: skip

    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: console.append(msg.text))
    page.goto(sandbox.login_url("root", "whostmgrd"))
    token = re.search(r"/cpsess\d+", page.url)
    assert token, page.url
    page.goto(f"https://127.0.0.1:{sandbox.whm_port}{token.group(0)}{PAGE_PATH}")
    page.wait_for_selector("#expiry-chart")
    assert page.locator("#expiry-chart g.week").count() == 13
    # The session's sandbox may hold other tests' accounts too: at least ours are counted.
    week0 = page.locator('#expiry-chart g.week[data-week="0"]')
    assert int(week0.get_attribute("data-failed") or 0) >= 1
    assert page.locator("#certificates tbody tr").count() >= 7
    assert page.locator("#uncovered").is_visible()
    assert "AutoSSL" in page.inner_text("#cpanel-autossl")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "whm-home.png"), full_page=True)

    # Filter and sort: a plain GET form and plain links.
    page.fill('#filters input[name="q"]', "whmchart")
    page.select_option('select[name="status"]', "failed")
    page.click('#filters button[type="submit"]')
    page.wait_for_selector("#certificates")
    shown = page.locator("#certificates tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.vhost)"
    )
    assert set(shown) == {others[0], others[3]}
    page.click("#certificates th >> text=Expiry")
    assert "order=desc" in page.url
    shown = page.locator("#certificates tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.vhost)"
    )
    assert shown == [others[3], others[0]]

    # Options: change the renewal window and save; the page says so.
    page.click("#tab-options")
    page.wait_for_selector("#options-form")
    page.fill("#opt-renewal_days", "25")
    page.screenshot(path=str(ARTIFACTS / "whm-options.png"), full_page=True)
    page.click("#save-options")
    page.wait_for_selector("#message")
    assert "Saved" in page.inner_text("#message")
    assert load_settings({"LECP_ROOT": str(sandbox.root)}).renewal_days == 25
    assert page.input_value("#opt-renewal_days") == "25"
    page.fill("#opt-renewal_days", "500")
    page.click("#save-options")
    page.wait_for_selector("#errors")
    assert "renewal_days must be between" in page.inner_text("#errors")
    page.goto(page.url.split("?")[0] + "?action=options")
    page.fill("#opt-renewal_days", "0")
    page.click("#save-options")
    page.wait_for_selector("#message")

    # Actions: renew now for the account, and see the outcome.
    page.click("#tab-actions")
    page.select_option("#renew-user", user)
    page.check('#renew-form input[name="force"]')
    page.click("#renew-form button")
    page.wait_for_selector("#outcome", timeout=120_000)
    assert f"{domain}: renewed" in page.inner_text("#outcome")
    page.click("text=Back to the certificates")
    row = page.locator(f'#certificates tr[data-vhost="{domain}"]')
    assert "Renewed" in row.inner_text() and "rsa:2048" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "whm-outcome.png"), full_page=True)
    assert errors == []
    assert not [line for line in console if "Content Security Policy" in line], console
    context.close()
