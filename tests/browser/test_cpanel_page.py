"""The cPanel page in Chromium: log in with a cPanel login URL, open the plugin from cPanel's
home, click Issue, watch the live progress, and see the website Secured. A screenshot of Home
is kept as a test artifact (artifacts/cpanel-home.png)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.conftest import ARTIFACTS
from tests.fixtures.lecp import configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.plugin_pages import (
    enable_plugin_feature,
    install_cpanel_page,
    new_user,
)
from tests.fixtures.sandbox import RunningSandbox

pytestmark = pytest.mark.browser
# Logs every text the progress panel shows, as the page changes it.
WATCH_PROGRESS = """() => {
  const panel = document.getElementById("progress");
  new MutationObserver(() => {
    const step = document.getElementById("progress-step").textContent;
    const all = [...document.querySelectorAll("#progress-steps li")].map(li => li.textContent);
    console.log("PROGRESS " + JSON.stringify({step: step, steps: all, shown: !panel.hidden}));
  }).observe(panel, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


@pytest.fixture
def page_sandbox(sandbox: RunningSandbox, pebble: PebbleInstance) -> RunningSandbox:
    configure(sandbox, pebble)
    install_cpanel_page(sandbox)
    enable_plugin_feature(sandbox)
    return sandbox


def test_issue_in_the_browser_shows_progress_then_secured(
    page_sandbox: RunningSandbox, browser: Browser
) -> None:
    user, domain = new_user(page_sandbox, "browser", addons=["browser-shop.test"])
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    console: list[str] = []
    errors: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(page_sandbox.login_url(user))
    page.click("text=letsencrypt-cpanel")  # cPanel's home links to the plugin
    page.wait_for_selector("#websites")
    row = page.locator(f'tr[data-vhost="{domain}"]')
    assert row.get_attribute("data-status") == "not_secured"
    assert "Not secured" in row.inner_text()

    row.locator("text=Issue").click()
    page.wait_for_selector("#issue-form")
    assert page.is_checked(f'input[name="name"][value="{domain}"]')
    assert page.is_checked(f'input[name="name"][value="www.{domain}"]')
    assert page.input_value("#key_type") == "rsa:2048"
    page.select_option("#key_type", "ecdsa:p-256")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "cpanel-issue.png"), full_page=True)
    page.evaluate(WATCH_PROGRESS)

    with page.expect_navigation(url=re.compile(r"letsencrypt\.live\.cgi$"), timeout=120_000):
        page.click("#issue-button")
    page.wait_for_selector("#message")

    shown = [line for line in console if line.startswith("PROGRESS ")]
    assert shown, f"the progress panel never changed; console: {console}"
    assert any('"shown": true' in line or '"shown":true' in line for line in shown)
    assert any(f"Proving you control {domain}" in line for line in shown), shown
    assert any("Installing the certificate" in line for line in shown), shown

    assert f"{domain} is secured until" in page.inner_text("#message")
    row = page.locator(f'tr[data-vhost="{domain}"]')
    assert row.get_attribute("data-status") == "secured"
    assert "Secured until" in row.inner_text()
    assert "From this plugin" in row.inner_text()

    shot = ARTIFACTS / "cpanel-home.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Path(shot).stat().st_size > 1000

    # View shows the new certificate's facts; no script error or CSP refusal on the way.
    row.locator("text=View").click()
    page.wait_for_selector("#fingerprint")
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", page.inner_text("#fingerprint"))
    assert "BEGIN CERTIFICATE" in page.inner_text("#cert-pem")
    page.screenshot(path=str(ARTIFACTS / "cpanel-view.png"), full_page=True)
    assert errors == []
    assert not [line for line in console if "Content Security Policy" in line], console
    context.close()


def _open_home(page_sandbox: RunningSandbox, context: BrowserContext, user: str) -> Page:
    page = context.new_page()
    page.goto(page_sandbox.login_url(user))
    page.click("text=letsencrypt-cpanel")
    page.wait_for_selector("#websites")
    return page


def test_issue_works_with_javascript_off(page_sandbox: RunningSandbox, browser: Browser) -> None:
    user, domain = new_user(page_sandbox, "nojs")
    context = browser.new_context(ignore_https_errors=True, java_script_enabled=False)
    page = _open_home(page_sandbox, context, user)
    page.locator(f'tr[data-vhost="{domain}"]').locator("text=Issue").click()
    page.wait_for_selector("#issue-form")
    # The form POST simply waits for the certificate, then the browser follows the redirect.
    with page.expect_navigation(url=re.compile(r"letsencrypt\.live\.cgi$"), timeout=120_000):
        page.click("#issue-button")
    assert f"{domain} is secured until" in page.inner_text("#message")
    row = page.locator(f'tr[data-vhost="{domain}"]')
    assert row.get_attribute("data-status") == "secured"

    # Remove asks first, on a page of its own, then POSTs.
    row.locator("text=Remove").click()
    page.wait_for_selector("text=Keep it")
    page.click("button:has-text('Remove')")
    page.wait_for_selector("#message")
    assert "was removed from" in page.inner_text("#message")
    row = page.locator(f'tr[data-vhost="{domain}"]')
    assert row.get_attribute("data-status") == "not_secured"
    context.close()


def test_a_failure_shows_what_to_do(page_sandbox: RunningSandbox, browser: Browser) -> None:
    user, domain = new_user(page_sandbox, "jsfail")
    context = browser.new_context(ignore_https_errors=True)
    page = _open_home(page_sandbox, context, user)
    page.locator(f'tr[data-vhost="{domain}"]').locator("text=Issue").click()
    page.wait_for_selector("#issue-form")
    page_sandbox.set_fault("SSL::install_ssl", "status0", times=1)
    try:
        with page.expect_navigation(url=re.compile(r"action=issue"), timeout=120_000):
            page.click("#issue-button")
    finally:
        page_sandbox.clear_faults()
    message = page.inner_text("#message")
    assert "was issued and saved, but cPanel did not install it" in message
    assert "Try Reinstall" in message
    page.click("text=Websites")
    row = page.locator(f'tr[data-vhost="{domain}"]')
    row.locator("button:has-text('Reinstall')").click()
    page.wait_for_selector("#message")
    assert "installed again" in page.inner_text("#message")
    assert page.locator(f'tr[data-vhost="{domain}"]').get_attribute("data-status") == "secured"
    context.close()
