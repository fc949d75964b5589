"""The Issue form offers a Wildcard only where this account has the name's DNS zone, never for a
`www.` name, asks cPanel once per zone, and says why when cPanel does not answer (issue 7)."""

from __future__ import annotations

import re
import secrets
from typing import Any

from cpanel_sandbox import layout
from letsencrypt_cpanel.cpanel.commandline import CommandLineTransport
from letsencrypt_cpanel.cpanel.uapi import UserAPI
from letsencrypt_cpanel.web.wildcard_offer import wildcard_offer
from tests.fixtures.plugin_pages import PageClient, new_user
from tests.fixtures.sandbox import RunningSandbox


def _user_with_a_zone_elsewhere(sandbox: RunningSandbox, prefix: str) -> tuple[str, str, str]:
    """(user, main domain, parked domain whose DNS zone is not on this server)."""
    parked = f"{prefix}{secrets.token_hex(3)}-away.test"
    user, domain = new_user(sandbox, prefix, parked=[parked])
    # The parked domain's DNS is hosted elsewhere: no zone for it on this server.
    layout.zone_file(sandbox.root, parked).unlink()
    return user, domain, parked


def _boxes(form: str) -> set[str]:
    return set(re.findall(r'name="name" value="\*\.([^"]+)"', form))


def test_the_form_offers_a_wildcard_only_where_the_zone_is_here(
    cpanel_page: RunningSandbox,
) -> None:
    user, domain, parked = _user_with_a_zone_elsewhere(cpanel_page, "wco")
    client = PageClient.login(cpanel_page, user)

    form = client.html({"action": "issue", "vhost": domain})
    # The main name and mail. live in the account's zone; www. never; the parked name's DNS is
    # elsewhere.
    assert _boxes(form) == {domain, f"mail.{domain}"}
    assert f'value="{parked}"' in form and f'value="www.{domain}"' in form  # still issuable
    elsewhere = re.search(r'id="wildcard-elsewhere">([^<]*)<', form)
    assert elsewhere is not None
    assert f"{parked}, mail.{parked}:" in elsewhere.group(1) and "not hosted" in form
    assert "www." not in elsewhere.group(1)

    data = client.get({"action": "issue", "vhost": domain}, json_api=True).json()["data"]
    offered = {n["name"]: n["wildcard_offered"] for n in data["names"]}
    assert offered[domain] and offered[f"mail.{domain}"]
    assert not offered[f"www.{domain}"] and not offered[parked]
    assert data["wildcard_problem"] == ""


def test_when_cpanel_does_not_answer_the_form_says_why_and_offers_none(
    cpanel_page: RunningSandbox,
) -> None:
    user, domain, _parked = _user_with_a_zone_elsewhere(cpanel_page, "wcf")
    client = PageClient.login(cpanel_page, user)
    cpanel_page.set_fault("DNS::parse_zone", "html", times=None)
    try:
        reply = client.get({"action": "issue", "vhost": domain})
        data = client.get({"action": "issue", "vhost": domain}, json_api=True).json()["data"]
    finally:
        cpanel_page.clear_faults()
    assert reply.status == 200
    form = reply.body.decode()
    assert _boxes(form) == set()
    problem = re.search(r'id="wildcard-problem">([^<]*)<', form)
    assert problem is not None and "Wildcards cannot be offered right now" in problem.group(1)
    assert "Reload the page" in problem.group(1)
    assert f'value="{domain}"' in form and 'id="issue-button"' in form  # the rest still works
    assert "Wildcards cannot be offered" in data["wildcard_problem"]
    assert not any(n["wildcard_offered"] for n in data["names"])


class _Counting:
    """The real command-line transport, counting which zones were asked for."""

    def __init__(self, inner: CommandLineTransport) -> None:
        self.inner = inner
        self.zones: list[str] = []

    def call_uapi(self, module: str, func: str, args: Any) -> dict[str, Any]:
        if (module, func) == ("DNS", "parse_zone"):
            self.zones.append(str(args["zone"]))
        result: dict[str, Any] = self.inner.call_uapi(module, func, args)
        return result


def test_each_zone_is_asked_once(sandbox: RunningSandbox) -> None:
    user, domain, parked = _user_with_a_zone_elsewhere(sandbox, "wc1")
    counting = _Counting(CommandLineTransport(sandbox.root, user=user))
    api = UserAPI(counting)  # type: ignore[arg-type]
    names = [domain, f"www.{domain}", f"mail.{domain}", f"a.b.{domain}", parked, f"mail.{parked}"]
    offer = wildcard_offer(api, names)
    assert offer.names == {domain, f"mail.{domain}", f"a.b.{domain}"} and offer.problem == ""
    assert sorted(counting.zones) == sorted(set(counting.zones))  # none asked twice
    assert set(counting.zones) == {
        domain,
        f"mail.{domain}",
        f"a.b.{domain}",
        f"b.{domain}",
        parked,
        f"mail.{parked}",
    }
