"""Tampered requests through cpsrvd's page host, as a logged-in user would send them: another
user's certificate and key ids and record keys in any parameter, a forged or borrowed session,
another session's CSRF token, and a reseller without `all` posting WHM actions with its own valid
token. Each is refused, and the victim's record, SSL storage and served certificate are byte for
byte what they were."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.fixtures.plugin_pages import PageClient
from tests.fixtures.sandbox import RunningSandbox
from tests.whm.pages import WhmClient, add_reseller, install_whm_page, set_owner


def victim_state(sandbox: RunningSandbox, user: str, domain: str) -> tuple[bytes, bytes, Any]:
    home = sandbox.root / "home" / user
    record = (home / ".cpanel/nvdata/letsencrypt-cpanel").read_bytes()
    ssl_db = (home / "ssl/ssl.db").read_bytes()
    return record, ssl_db, sandbox.fetch_site_cert(domain)


def test_another_users_ids_and_keys_in_any_parameter_change_nothing(
    cpanel_page: RunningSandbox, lecp: Any, account: Callable[..., tuple[str, str]]
) -> None:
    sandbox = cpanel_page
    attacker, mine = account("hxtamp")
    victim, theirs = account("hxvict")
    lecp.ok("ssl", "issue", "--user", attacker, mine)
    lecp.ok("ssl", "issue", "--user", victim, theirs)
    before = victim_state(sandbox, victim, theirs)
    entry = json.loads(before[0])["certificates"][theirs]
    account_key = next(iter(json.loads(before[0])["accounts"]))  # the record's account key
    ids = [entry["cert_id"], entry["key_id"], theirs, account_key]
    assert entry["cert_id"] and entry["key_id"]

    client = PageClient.login(sandbox, attacker)
    token = client.csrf_token()
    params = ["vhost", "virtual_host", "domain", "cert_id", "key_id", "id", "name", "user"]
    answers = []
    for value in ids:
        for param in params:
            for action in ("reinstall", "remove"):
                fields = {"action": action, param: value}
                if param not in ("vhost", "virtual_host", "domain"):
                    fields["vhost"] = mine  # the attacker's own website, the victim's id
                reply = client.post(fields, json_api=True, csrf=token)
                answers.append((action, param, value, reply.status))
                assert reply.status < 500, (action, param, reply.body[:300])
        reply = client.get({"action": "view", "vhost": theirs, "cert_id": value})
        assert reply.status == 404, reply.body[:300]
    # Only the attacker's own website could be acted on; the victim's is untouched.
    assert victim_state(sandbox, victim, theirs) == before
    assert all(status in (200, 303, 400, 403, 404, 409) for *_, status in answers), answers


def test_forged_and_borrowed_sessions_never_reach_the_page(
    cpanel_page: RunningSandbox, lecp: Any, account: Callable[..., tuple[str, str]]
) -> None:
    sandbox = cpanel_page
    user, domain = account("hxsess")
    other, _ = account("hxsess")
    lecp.ok("ssl", "issue", "--user", user, domain)
    before = victim_state(sandbox, user, domain)
    mine, theirs = PageClient.login(sandbox, user), PageClient.login(sandbox, other)
    fields = {"action": "remove", "vhost": domain}

    forged = replace(mine.session, token="/cpsess" + "1234567890")
    borrowed = replace(mine.session, cookie=theirs.session.cookie)
    no_cookie = replace(mine.session, cookie="cpsession=")
    for session in (forged, borrowed, no_cookie):
        client = PageClient(sandbox, session)
        for reply in (client.get(json_api=True), client.post(fields, csrf="0" * 64)):
            assert reply.status in (401, 403) or reply.status in (301, 302, 307), reply.status
            assert domain.encode() not in reply.body
    # A real session of this user with a CSRF token of another session (the same user's).
    second = PageClient.login(sandbox, user)
    reply = mine.post(fields, json_api=True, csrf=second.csrf_token())
    assert reply.status == 403 and "did not come from your cPanel session" in reply.body.decode()
    # Another user's valid token, in this user's session.
    reply = mine.post(fields, json_api=True, csrf=theirs.csrf_token())
    assert reply.status == 403
    assert victim_state(sandbox, user, domain) == before


def test_a_reseller_without_all_changes_nothing_in_whm(
    sandbox: RunningSandbox, lecp: Any, account: Callable[..., tuple[str, str]]
) -> None:
    install_whm_page(sandbox)
    reseller, _ = account("hxresl")
    owned, owned_domain = account("hxownd")
    add_reseller(sandbox, reseller, ["list-accts", "create-acct", "edit-account"])
    set_owner(sandbox, owned, reseller)
    lecp.ok("ssl", "issue", "--user", owned, owned_domain)
    config: Path = sandbox.root / "etc/letsencrypt-cpanel.conf"
    before_config, before_site = config.read_bytes(), victim_state(sandbox, owned, owned_domain)

    client = WhmClient.login(sandbox, reseller)
    token = client.csrf_token()  # its own, valid token: the refusal is about rights alone
    posts = [
        {"action": "save_options", "acme_directory": "https://evil.test/dir"},
        {"action": "renew", "user": owned, "force": "1"},
        {"action": "autossl", "user": owned},
        {"action": "service_cert", "force": "1"},
        {"action": "exclude_cpanel_autossl"},
    ]
    for fields in posts:
        for json_api in (True, False):
            reply = client.post(fields, json_api=json_api, csrf=token)
            assert reply.status == 403, (fields, reply.status, reply.body[:300])
            assert b"all" in reply.body
    for page in ("options", "actions"):
        assert client.get({"action": page}).status == 403
    assert config.read_bytes() == before_config
    assert victim_state(sandbox, owned, owned_domain) == before_site
