"""What the cPanel page refuses: POSTs without this session's CSRF token, another user's
websites in any parameter, users without the feature; and markup always comes back escaped."""

from __future__ import annotations

import json
import os
import secrets

import pytest

from tests.fixtures.plugin_pages import (
    PageClient,
    new_user,
    set_feature_list,
    use_feature_list,
)
from tests.fixtures.sandbox import RunningSandbox

MARKUP = '<script>alert("x")</script>'


def _disable_mail(sandbox: RunningSandbox, user: str) -> bool | None:
    path = sandbox.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    return json.loads(path.read_text())["disable_mail"] if path.exists() else None


def test_post_without_this_sessions_token_is_refused(cpanel_page: RunningSandbox) -> None:
    user, _ = new_user(cpanel_page, "csrf")
    other, _ = new_user(cpanel_page, "csrfo")
    client = PageClient.login(cpanel_page, user)
    second_session = PageClient.login(cpanel_page, user)
    other_user = PageClient.login(cpanel_page, other)
    assert client.csrf_token() != second_session.csrf_token()
    assert client.csrf_token() == client.csrf_token()  # stable within a session

    for token in ("", "0" * 64, second_session.csrf_token(), other_user.csrf_token()):
        reply = client.post({"action": "settings", "send_success_mail": "0"}, csrf=token)
        assert reply.status == 403, (token, reply.body[:300])
        assert b"did not come from your cPanel session" in reply.body
        reply = client.post(json_api=True, json_body={"action": "settings"}, csrf=token)
        assert reply.status == 403 and reply.json()["success"] is False
    assert _disable_mail(cpanel_page, user) in (None, False)  # nothing changed

    assert client.post({"action": "settings", "send_success_mail": "0"}).status == 303
    assert _disable_mail(cpanel_page, user) is True


def test_get_never_changes_anything(cpanel_page: RunningSandbox) -> None:
    user, domain = new_user(cpanel_page, "getonly")
    client = PageClient.login(cpanel_page, user)
    for action in ("reinstall", "settings", "remove", "issue"):
        reply = client.get({"action": action, "vhost": domain, "send_success_mail": "0"})
        assert reply.status in (200, 404), reply.body[:300]
    reply = client.get({"action": "reinstall", "vhost": domain})
    assert reply.status == 404 and b"There is no page" in reply.body
    assert _disable_mail(cpanel_page, user) in (None, False)


def test_markup_comes_back_escaped(cpanel_page: RunningSandbox) -> None:
    user, domain = new_user(cpanel_page, "markup")
    client = PageClient.login(cpanel_page, user)

    for query in (
        {"action": "issue", "vhost": MARKUP},
        {"action": "view", "vhost": MARKUP},
        {"action": MARKUP},
    ):
        reply = client.get(query)
        assert reply.status in (400, 404), reply.body[:300]
        assert MARKUP.encode() not in reply.body
        assert b"&lt;script&gt;" in reply.body
        assert client.get(query, json_api=True).json()["success"] is False

    reply = client.post({"action": "issue", "vhost": domain, "name": [MARKUP]})
    assert reply.status == 400 and MARKUP.encode() not in reply.body
    assert b"&lt;script&gt;" in reply.body

    # An error text with markup (the CA's or cPanel's words, kept in the record) shown on Home.
    record = cpanel_page.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    record.parent.mkdir(parents=True, exist_ok=True)
    entry = {"vhost": domain, "names": [domain], "last_error": MARKUP, "failures": 1}
    record.write_text(json.dumps({"version": 1, "certificates": {domain: entry}}))
    uid = (cpanel_page.root / "home" / user).stat().st_uid
    for path in (record, record.parent, record.parent.parent):
        os.chown(path, uid, uid)
    record.chmod(0o600)
    home = client.html()
    assert "Last attempt failed: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in home
    assert MARKUP not in home


def test_another_users_website_is_refused_everywhere(cpanel_page: RunningSandbox) -> None:
    tag = secrets.token_hex(3)
    user, domain = new_user(cpanel_page, "mine")
    _other, theirs = new_user(cpanel_page, "theirs", addons=[f"their{tag}.test"])
    client = PageClient.login(cpanel_page, user)
    for foreign in (theirs, f"www.{theirs}", f"their{tag}.test", "nobody.test"):
        for action in ("issue", "view", "remove", "progress"):
            reply = client.get({"action": action, "vhost": foreign})
            assert reply.status == 404, (action, foreign, reply.body[:300])
            assert b"is not one of the websites of this cPanel account" in reply.body
        for action in ("issue", "reinstall", "remove"):
            fields = {"action": action, "vhost": foreign, "name": [foreign]}
            assert client.post(fields).status == 404
            assert client.post(fields, json_api=True).status == 404
        # Own website, foreign name: refused before the CA or cPanel is asked.
        reply = client.post({"action": "issue", "vhost": domain, "name": [domain, foreign]})
        assert reply.status == 403, reply.body[:300]
        assert b"is not a name of the website" in reply.body
    assert theirs not in client.html()


@pytest.mark.parametrize("missing", ["letsencrypt-cpanel", "sslinstall"])
def test_user_without_the_feature_gets_an_explanation(
    cpanel_page: RunningSandbox, missing: str
) -> None:
    user, domain = new_user(cpanel_page, "nofeat")
    listing = f"no-{missing}"
    set_feature_list(cpanel_page.root, listing, {"letsencrypt-cpanel": True, missing: False})
    use_feature_list(cpanel_page, user, listing)
    client = PageClient.login(cpanel_page, user)
    reply = client.get()
    assert reply.status == 403
    assert b"not enabled for your hosting package" in reply.body
    assert b"Ask your hosting provider" in reply.body
    assert domain.encode() not in reply.body
    reply = client.get(json_api=True)
    assert reply.status == 403 and reply.json()["success"] is False
    reply = client.post({"action": "issue", "vhost": domain, "name": [domain]}, csrf="x")
    assert reply.status == 403


def test_a_failed_install_says_what_to_do(cpanel_page: RunningSandbox) -> None:
    user, domain = new_user(cpanel_page, "fails")
    client = PageClient.login(cpanel_page, user)
    cpanel_page.set_fault("SSL::install_ssl", "status0", times=1)
    try:
        names = [domain, f"www.{domain}"]
        reply = client.post({"action": "issue", "vhost": domain, "name": names})
    finally:
        cpanel_page.clear_faults()
    assert reply.status == 303
    assert reply.header("Location") == client.url + f"?action=issue&vhost={domain}"
    page = client.html({"action": "issue", "vhost": domain})
    assert "alert-error" in page and "Try Reinstall" in page
    progress = client.get({"action": "progress", "vhost": domain}, json_api=True).json()
    assert progress["data"]["step"] == "failed"
    # The certificate was saved: Reinstall installs it without ordering again.
    assert client.post({"action": "reinstall", "vhost": domain}).status == 303
    assert client.rows()[domain]["status"] == "secured"
