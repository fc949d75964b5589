"""The Issue form and Settings in Chromium: a Wildcard box only where the account has the name's
DNS zone (never for www.), the reason shown for the others, and Settings speaking of renewals
only; no CSP violation. Screenshots are kept as artifacts."""

from __future__ import annotations

from playwright.sync_api import Browser

from cpanel_sandbox import layout
from tests.browser.conftest import ARTIFACTS
from tests.fixtures.lecp import configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.plugin_pages import enable_plugin_feature, install_cpanel_page, new_user
from tests.fixtures.sandbox import RunningSandbox


def test_issue_form_offers_wildcards_where_the_zone_is_here(
    sandbox: RunningSandbox, pebble: PebbleInstance, browser: Browser
) -> None:
    configure(sandbox, pebble)
    install_cpanel_page(sandbox)
    enable_plugin_feature(sandbox)
    user, domain = new_user(sandbox, "bforms", parked=["bforms-away.test"])
    # The parked domain's DNS is hosted elsewhere: no zone for it on this server.
    layout.zone_file(sandbox.root, "bforms-away.test").unlink()
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(sandbox.login_url(user))
    page.click("text=letsencrypt-cpanel")
    page.locator(f'tr[data-vhost="{domain}"]').locator("text=Issue").click()
    page.wait_for_selector("#issue-form")

    wildcards = page.locator('input[name="name"][value^="*."]')
    offered = {wildcards.nth(i).get_attribute("value") for i in range(wildcards.count())}
    assert offered == {f"*.{domain}", f"*.mail.{domain}"}
    assert page.locator(f'input[name="name"][value="www.{domain}"]').is_checked()
    assert "bforms-away.test" in page.inner_text("#wildcard-elsewhere")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "cpanel-issue-form.png"), full_page=True)

    page.click("text=Settings")
    page.wait_for_selector('input[name="send_success_mail"]')
    assert "E-mail me when a certificate is renewed" in page.inner_text("form.card")
    page.screenshot(path=str(ARTIFACTS / "cpanel-settings.png"), full_page=True)
    assert not [line for line in console if "Content Security Policy" in line], console
    context.close()
