"""The cPanel page in Chromium against a Pebble whose DNS is pebble-challtestsrv: tick Wildcard,
Issue, watch the progress, see the website Secured with the wildcard on its certificate.
A Test (dry run) first comes back on the form and changes nothing. Screenshots:
artifacts/cpanel-wildcard-form.png, cpanel-wildcard-dry-run.png, cpanel-wildcard-home.png."""

from __future__ import annotations

import re

import pytest
from cryptography import x509
from playwright.sync_api import Browser

from tests.browser.conftest import ARTIFACTS
from tests.browser.test_cpanel_page import WATCH_PROGRESS
from tests.fixtures.ca_bed import Bed
from tests.web.test_issue7_page import bed

pytestmark = [pytest.mark.browser, pytest.mark.pebble, pytest.mark.root]
# Fixtures shared with their modules (each module gets its own): Chromium, and a sandbox with
# the page installed whose zones feed this module's Pebble's DNS (staging = that Pebble).
__all__ = ["bed"]


def test_tick_wildcard_issue_see_secured(bed: Bed, browser: Browser) -> None:
    user = bed.new_user("bwild", "bwild.test")
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(60_000)  # CI machines run many suites at once
    page = context.new_page()
    console: list[str] = []
    errors: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(bed.sandbox.login_url(user))
    page.click("text=letsencrypt-cpanel")
    page.wait_for_selector("#websites")
    row = page.locator('tr[data-vhost="bwild.test"]')
    assert row.get_attribute("data-status") == "not_secured"
    row.locator("text=Issue").click()
    page.wait_for_selector("#issue-form")

    wildcard = 'input[name="name"][value="*.bwild.test"]'
    assert not page.is_checked(wildcard)
    page.check(wildcard)
    assert page.input_value("#challenge") == ""  # Automatic
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "cpanel-wildcard-form.png"), full_page=True)

    # Test (dry run) first: the result comes back on the form, and nothing changed.
    page.evaluate(WATCH_PROGRESS)
    with page.expect_navigation(url=re.compile(r"action=issue"), timeout=120_000):
        page.click("#test-button")
    shown = [line for line in console if line.startswith("PROGRESS ")]
    assert any("Proving you control" in line for line in shown), shown
    dry = page.inner_text("#message")
    assert "Test only (dry run), nothing changed" in dry, dry
    page.screenshot(path=str(ARTIFACTS / "cpanel-wildcard-dry-run.png"), full_page=True)
    page.check(wildcard)  # the form offers the saved choice; nothing was saved
    page.evaluate(WATCH_PROGRESS)
    before = len(console)

    # Any navigation: a failure goes back to the form, and its message says why.
    with page.expect_navigation(timeout=120_000):
        page.click("#issue-button")
    message = page.inner_text("#message")
    assert re.search(r"letsencrypt\.live\.cgi$", page.url), (page.url, message)
    # (The CA may reuse the names' authorizations the test validated: no "Proving" then.)
    shown = [line for line in console[before:] if line.startswith("PROGRESS ")]
    assert any("Installing the certificate" in line for line in shown), shown

    assert "bwild.test is secured until" in message and "*.bwild.test" in message
    row = page.locator('tr[data-vhost="bwild.test"]')
    assert row.get_attribute("data-status") == "secured"
    assert "Secured until" in row.inner_text()
    assert "*.bwild.test" in row.inner_text()
    shot = ARTIFACTS / "cpanel-wildcard-home.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000

    cert = bed.sandbox.fetch_site_cert("www.bwild.test")
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert set(ext.value.get_values_for_type(x509.DNSName)) == {"bwild.test", "*.bwild.test"}
    assert errors == []
    assert not [line for line in console if "Content Security Policy" in line], console
    context.close()
