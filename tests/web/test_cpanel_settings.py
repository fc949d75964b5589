"""The Settings page promises only what is sent: renewal mails (an issue from the page mails
nothing), and when the admin turned success mails off for the server, the box is disabled and
says so (issue 4)."""

from __future__ import annotations

import re

from tests.fixtures.lecp import LeCp
from tests.fixtures.plugin_pages import PageClient, new_user
from tests.fixtures.sandbox import RunningSandbox


def _box(page: str) -> str:
    found = re.search(r'<input type="checkbox" name="send_success_mail"[^>]*>([^<]*)<', page)
    assert found is not None, page
    return found.group(0)


def test_the_box_promises_renewal_mails_only(cpanel_page: RunningSandbox) -> None:
    user, _domain = new_user(cpanel_page, "setm")
    client = PageClient.login(cpanel_page, user)
    page = client.html({"action": "settings"})
    box = _box(page)
    assert "E-mail me when a certificate is renewed" in box and "disabled" not in box
    assert "issued" not in page
    reply = client.post({"action": "settings", "send_success_mail": "1"})
    assert reply.status == 303
    saved = client.html({"action": "settings"})
    assert "you get an e-mail when a certificate is renewed." in saved and "issued" not in saved
    data = client.get({"action": "settings"}, json_api=True).json()["data"]
    assert data["send_success_mail"] is True and data["server_sends_success_mail"] is True


def test_success_mails_off_server_wide_disable_the_box(
    cpanel_page: RunningSandbox, configured: LeCp
) -> None:
    user, _domain = new_user(cpanel_page, "setoff")
    client = PageClient.login(cpanel_page, user)
    configured.ok("config", "set", "send_success_mail", "false")
    try:
        page = client.html({"action": "settings"})
        data = client.get({"action": "settings"}, json_api=True).json()["data"]
    finally:
        configured.ok("config", "set", "send_success_mail", "true")
    box = _box(page)
    assert " disabled>" in box and "checked" not in box
    off = re.search(r'id="success-mail-off">([^<]*)<', page)
    assert off is not None and "turned these e-mails off for the whole server" in off.group(1)
    assert 'type="submit"' not in page.split('id="success-mail-off"', 1)[1].split("</form>")[0]
    assert data["send_success_mail"] is True and data["server_sends_success_mail"] is False
