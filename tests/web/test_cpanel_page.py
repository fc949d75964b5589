"""The cPanel page as cpsrvd runs it (the sandbox's page host: the user's uid, a real LiveAPI
socket), issuing from Pebble: Home, Issue, View, Reinstall, Remove, Settings and the JSON API."""

from __future__ import annotations

import json
import re
import secrets
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.fixtures.plugin_pages import PAGE_PATH, PageClient, new_user
from tests.fixtures.sandbox import RunningSandbox


def san_names(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(ext.value.get_values_for_type(x509.DNSName))


def test_home_lists_exactly_the_users_websites(cpanel_page: RunningSandbox) -> None:
    tag = secrets.token_hex(3)
    user, domain = f"home{tag}", f"home{tag}.test"
    cpanel_page.add_user(
        user,
        domain,
        addons=[f"shop{tag}.test"],
        subs=[f"blog.{domain}"],
        parked=[f"parked{tag}.test"],
    )
    other, other_domain = new_user(cpanel_page, "other", addons=[f"theirs{tag}.test"])
    client = PageClient.login(cpanel_page, user)

    rows = client.rows()
    assert set(rows) == {domain, f"shop{tag}.test", f"blog.{domain}"}
    assert [rows[v]["kind"] for v in (domain, f"shop{tag}.test", f"blog.{domain}")] == [
        "main",
        "addon",
        "sub",
    ]
    main = rows[domain]
    assert f"parked{tag}.test" in main["names"] and f"www.{domain}" in main["names"]
    assert main["status"] == "not_secured" and main["managed"] is False
    assert f"www.shop{tag}.test" in rows[f"shop{tag}.test"]["names"]

    page = client.html()
    assert "Your websites" in page
    for name in (domain, f"shop{tag}.test", f"parked{tag}.test", f"blog.{domain}"):
        assert name in page
    for name in (other_domain, f"theirs{tag}.test", other):
        assert name not in page
    # Parked names are grouped under the vhost they share, not listed as websites of their own.
    assert len(re.findall(r'<tr data-vhost="', page)) == 3
    assert "Main domain" in page and "Addon domain" in page and "Subdomain" in page


def test_issue_view_reinstall_remove_in_html(cpanel_page: RunningSandbox) -> None:
    tag = secrets.token_hex(3)
    user, domain = new_user(cpanel_page, "life", parked=[f"alias{tag}.test"])
    client = PageClient.login(cpanel_page, user)

    form = client.html({"action": "issue", "vhost": domain})
    assert re.search(rf'value="{re.escape(domain)}" checked', form)
    assert re.search(rf'value="www\.{re.escape(domain)}" checked', form)
    assert re.search(rf'value="alias{tag}\.test">', form)  # offered, not ticked
    assert '<option value="rsa:2048" selected>' in form

    reply = client.post(
        {
            "action": "issue",
            "vhost": domain,
            "name": [domain, f"www.{domain}", f"alias{tag}.test"],
            "key_type": "ecdsa:p-256",
        }
    )
    assert reply.status == 303, reply.body[:800]
    assert reply.header("Location") == client.url
    served = cpanel_page.fetch_site_cert(f"alias{tag}.test")
    assert san_names(served) == {domain, f"www.{domain}", f"alias{tag}.test"}
    assert "Pebble" in served.issuer.rfc4514_string()

    home = client.html()
    assert 'id="message"' in home and f"{domain} is secured until" in home
    # www. of the alias was not ticked: the row says so rather than "Secured".
    assert re.search(rf'data-vhost="{re.escape(domain)}" data-status="partial"', home)
    assert f"www.alias{tag}.test" in home and "From this plugin" in home
    assert 'id="message"' not in client.html()  # shown once

    view = client.html({"action": "view", "vhost": domain})
    fingerprint = served.fingerprint(hashes.SHA256()).hex().upper()
    assert ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)) in view
    assert "BEGIN CERTIFICATE" in view and 'id="chain-pem"' in view
    assert "ECDSA P-256" in view and "PRIVATE KEY" not in view

    # Someone takes the certificate off; Reinstall puts the saved one back.
    assert (
        cpanel_page.uapi(cpanel_page.login(user), "SSL", "delete_ssl", {"domain": domain}).status
        == 200
    )
    assert client.rows()[domain]["status"] == "not_secured"
    assert "The plugin has one saved: Reinstall puts it back." in client.html()
    reply = client.post({"action": "reinstall", "vhost": domain})
    assert reply.status == 303, reply.body[:800]
    assert "installed again" in client.html()
    assert cpanel_page.fetch_site_cert(domain).serial_number == served.serial_number

    confirm = client.html({"action": "remove", "vhost": domain})
    assert "Remove the certificate of" in confirm and 'name="action" value="remove"' in confirm
    assert client.rows()[domain]["managed"] is True  # the GET changed nothing
    reply = client.post({"action": "remove", "vhost": domain})
    assert reply.status == 303, reply.body[:800]
    assert "was removed from" in client.html()
    row = client.rows()[domain]
    assert row["plugin"] is None and row["status"] == "not_secured"


def test_json_api_answers_each_action(cpanel_page: RunningSandbox) -> None:
    user, domain = new_user(cpanel_page, "api")
    client = PageClient.login(cpanel_page, user)

    listing = client.get(json_api=True)
    assert listing.status == 200 and listing.header("Content-Type").startswith("application/json")
    body = listing.json()
    assert body["success"] is True and body["errors"] == []
    assert [row["vhost"] for row in body["data"]["virtual_hosts"]] == [domain]

    issued = client.post(
        json_api=True,
        json_body={
            "api_function": "issue-certificate",  # FleetSSL's name for it
            "virtual_host": domain,
            "dns_identifiers": [domain],
            "key_type": "rsa:2048",
        },
    )
    assert issued.status == 200, issued.body[:800]
    assert issued.json()["success"] is True
    assert issued.json()["data"]["names"] == [domain]
    row = client.rows()[domain]
    assert row["status"] == "partial" and row["uncovered"] == [f"www.{domain}"]

    viewed = client.get({"action": "view", "vhost": domain}, json_api=True).json()["data"]
    assert viewed["names"] == [domain] and viewed["key_type"] == "rsa:2048"
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", viewed["fingerprint_sha256"])
    assert "PRIVATE" not in str(viewed)

    again = client.post({"action": "reinstall", "vhost": domain}, json_api=True)
    assert again.status == 200 and again.json()["data"]["vhost"] == domain

    progress = client.get({"action": "progress", "vhost": domain}, json_api=True).json()["data"]
    assert progress["running"] is False and progress["step"] == "done"

    settings = client.post({"action": "settings", "send_success_mail": "0"}, json_api=True)
    assert settings.status == 200 and settings.json()["data"] == {"send_success_mail": False}
    assert (
        client.get({"action": "settings"}, json_api=True).json()["data"]["send_success_mail"]
        is False
    )

    removed = client.post(json_api=True, json_body={"action": "remove", "virtual_host": domain})
    assert removed.status == 200 and removed.json() == {"data": None, "errors": [], "success": True}
    missing = client.post({"action": "reinstall", "vhost": domain}, json_api=True)
    assert missing.status == 404 and missing.json()["success"] is False
    assert "has no certificate from this plugin" in missing.json()["errors"][0]


def test_settings_page_turns_success_mail_off_and_on(cpanel_page: RunningSandbox) -> None:
    user, _ = new_user(cpanel_page, "prefs")
    client = PageClient.login(cpanel_page, user)
    assert 'name="send_success_mail" value="1" checked' in client.html({"action": "settings"})
    reply = client.post({"action": "settings"})  # the box unticked: the field is absent
    assert reply.status == 303 and reply.header("Location") == client.url + "?action=settings"
    page = client.html({"action": "settings"})
    assert "no more e-mails" in page and 'value="1" checked' not in page
    record = cpanel_page.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    assert json.loads(record.read_text())["disable_mail"] is True
    client.post({"action": "settings", "send_success_mail": "1"})
    assert json.loads(record.read_text())["disable_mail"] is False


def test_page_files_are_private(cpanel_page: RunningSandbox) -> None:
    user, _domain = new_user(cpanel_page, "files")
    client = PageClient.login(cpanel_page, user)
    client.post({"action": "settings", "send_success_mail": "1"})
    nvdata = cpanel_page.root / "home" / user / ".cpanel" / "nvdata"
    for path in nvdata.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, (path.name, oct(mode))
    assert stat.S_IMODE(nvdata.stat().st_mode) == 0o700
    assert PAGE_PATH.endswith("letsencrypt.live.cgi")
