"""Issue 7 on the cPanel page, through the sandbox's page host as the user, against a Pebble whose
DNS is pebble-challtestsrv (fed by the sandbox's zone edits): Wildcard + base issued from the
form with dns-01, a Test (dry run) that changes nothing, Remove and revoke seen at Pebble's
`/cert-status-by-serial/`, the JSON API's new fields and the advice for dns-01 failures."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from letsencrypt_cpanel.errors import AcmeError, ChallengeFailed
from letsencrypt_cpanel.web.error_advice import message_for, status_for
from letsencrypt_cpanel.web.progress import step_text
from tests.fixtures.ca_bed import Bed, running_bed
from tests.fixtures.plugin_pages import PageClient, enable_plugin_feature, install_cpanel_page

pytestmark = [pytest.mark.pebble, pytest.mark.root]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with running_bed(tmp_path_factory.mktemp("issue7-page")) as running:
        install_cpanel_page(running.sandbox)
        enable_plugin_feature(running.sandbox)
        # The dry run's "staging CA" is this Pebble too: what matters is that nothing changes.
        running.lecp.ok("config", "set", "staging_directory", running.pebble.directory_url)
        yield running


def served_names(bed: Bed, name: str) -> set[str]:
    """The names of the certificate the site presents for SNI `name`."""
    cert = bed.sandbox.fetch_site_cert(name)
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(ext.value.get_values_for_type(x509.DNSName))


def saved_certificates(bed: Bed, user: str) -> dict[str, Any]:
    """The certificates in the user's record (none when it was never written)."""
    path = bed.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    saved: dict[str, Any] = json.loads(path.read_text()).get("certificates", {})
    return saved


def serial_of(bed: Bed, name: str) -> str:
    return format(bed.sandbox.fetch_site_cert(name).serial_number, "x")


def test_wildcard_and_base_issued_from_the_form(bed: Bed) -> None:
    user = bed.new_user("pwild", "pwild.test")
    client = PageClient.login(bed.sandbox, user)

    form = client.html({"action": "issue", "vhost": "pwild.test"})
    assert 'value="*.pwild.test">' in form and "Wildcard (*.pwild.test)" in form
    assert "hosted on this server" in form and "validated through DNS" in form
    assert '<option value="" selected>Automatic</option>' in form
    assert '<option value="dns-01">DNS (dns-01)</option>' in form
    assert 'id="test-button"' in form and 'name="dry_run" value="1"' in form

    reply = client.post(
        {"action": "issue", "vhost": "pwild.test", "name": ["pwild.test", "*.pwild.test"]}
    )
    assert reply.status == 303, reply.body[:800]
    assert reply.header("Location") == client.url
    home = client.html()
    assert "pwild.test is secured until" in home and "*.pwild.test" in home
    assert client.rows()["pwild.test"]["status"] == "secured"

    # The site serves it, for the base name and for any one-label subdomain.
    assert served_names(bed, "pwild.test") == {"pwild.test", "*.pwild.test"}
    assert served_names(bed, "www.pwild.test") == {"pwild.test", "*.pwild.test"}
    entry = saved_certificates(bed, user)["pwild.test"]
    assert entry["challenge_method"] == "dns-01"
    assert "_acme-challenge" not in bed.zone_text("pwild.test")

    # The form now offers the same choice again: the wildcard is ticked.
    again = client.html({"action": "issue", "vhost": "pwild.test"})
    assert 'value="*.pwild.test" checked' in again


def test_a_dry_run_changes_nothing(bed: Bed) -> None:
    user = bed.new_user("pdry", "pdry.test")
    client = PageClient.login(bed.sandbox, user)
    before = bed.sandbox.fetch_site_cert("pdry.test").serial_number

    reply = client.post(
        {
            "action": "issue",
            "vhost": "pdry.test",
            "name": ["pdry.test", "www.pdry.test"],
            "dry_run": "1",
        }
    )
    assert reply.status == 303, reply.body[:800]
    form_url = client.url + "?action=issue&vhost=pdry.test"
    assert reply.header("Location") == form_url  # the result is shown on the form
    page = client.html({"action": "issue", "vhost": "pdry.test"})
    message = re.search(r'<div class="alert [^"]*" id="message"[^>]*>([^<]*)</div>', page)
    assert message is not None, page[:2000]
    assert "Test only (dry run), nothing changed" in message.group(1)
    assert "not installed or saved" in message.group(1)

    assert bed.sandbox.fetch_site_cert("pdry.test").serial_number == before
    assert saved_certificates(bed, user) == {}
    row = re.search(r'<tr data-vhost="pdry\.test".*?</tr>', client.html(), re.S)
    assert row is not None and "Not secured" in row.group(0)

    # The JSON API: dry_run and the method used, reported; still nothing installed.
    got = client.post(
        json_api=True,
        json_body={
            "action": "issue",
            "vhost": "pdry.test",
            "names": ["pdry.test"],
            "dry_run": True,
        },
    )
    assert got.status == 200, got.body[:800]
    data = got.json()["data"]
    assert data["dry_run"] is True and data["challenge_method"] == "http-01"
    assert data["cert_id"] == "" and data["names"] == ["pdry.test"]
    assert client.rows()["pdry.test"]["status"] == "not_secured"
    assert bed.sandbox.fetch_site_cert("pdry.test").serial_number == before


def test_remove_and_revoke_from_the_page(bed: Bed) -> None:
    user = bed.new_user("prev", "prev.test", addons=["prevshop.test"])
    client = PageClient.login(bed.sandbox, user)
    issued = client.post(
        json_api=True, json_body={"action": "issue", "vhost": "prev.test", "names": ["prev.test"]}
    )
    assert issued.status == 200, issued.body[:800]
    serial = serial_of(bed, "prev.test")
    assert bed.pebble.cert_status(serial)["Status"] == "Valid"

    view = client.html({"action": "view", "vhost": "prev.test"})
    assert "revoke=1" in view and "Remove and revoke" in view
    confirm = client.html({"action": "remove", "vhost": "prev.test", "revoke": "1"})
    assert '<input type="hidden" name="revoke" value="1">' in confirm
    assert '<select id="reason" name="reason">' in confirm
    for reason in ("unspecified", "keyCompromise", "superseded", "cessationOfOperation"):
        assert f'<option value="{reason}"' in confirm
    assert "cannot be undone" in confirm
    plain = client.html({"action": "remove", "vhost": "prev.test"})
    assert 'name="reason"' not in plain and 'name="revoke"' not in plain

    reply = client.post(
        {"action": "remove", "vhost": "prev.test", "revoke": "1", "reason": "keyCompromise"}
    )
    assert reply.status == 303, reply.body[:800]
    home = client.html()
    assert "Revoked at the certificate authority (reason: The private key was exposed" in home
    status = bed.pebble.cert_status(serial)
    assert status["Status"] == "Revoked" and status["Reason"] == 1
    assert "prev.test" not in saved_certificates(bed, user)
    assert client.rows()["prev.test"]["managed"] is False

    # The JSON API: revoke and reason in, what was done out.
    client.post(
        json_api=True,
        json_body={"action": "issue", "vhost": "prevshop.test", "names": ["prevshop.test"]},
    )
    serial = serial_of(bed, "prevshop.test")
    bad = client.post(
        json_api=True,
        json_body={"action": "remove", "vhost": "prevshop.test", "revoke": True, "reason": "bored"},
    )
    assert bad.status == 400 and "Unknown revocation reason" in bad.json()["errors"][0]
    assert bed.pebble.cert_status(serial)["Status"] == "Valid"
    removed = client.post(
        json_api=True,
        json_body={
            "action": "remove",
            "vhost": "prevshop.test",
            "revoke": True,
            "reason": "superseded",
        },
    )
    assert removed.status == 200, removed.body[:800]
    assert removed.json()["data"] == {
        "vhost": "prevshop.test",
        "revoked": True,
        "reason": "superseded",
    }
    status = bed.pebble.cert_status(serial)
    assert status["Status"] == "Revoked" and status["Reason"] == 4


def test_json_issue_fields_and_refusals(bed: Bed) -> None:
    user = bed.new_user("pjson", "pjson.test", parked=["pjaway.test"])
    # The parked domain's DNS is hosted elsewhere: no zone for it on this server.
    (bed.root / "var/named/pjaway.test.db").unlink()
    client = PageClient.login(bed.sandbox, user)

    form = client.get({"action": "issue", "vhost": "pjson.test"}, json_api=True).json()["data"]
    assert form["challenges"] == ["", "http-01", "dns-01"] and form["challenge"] == ""
    assert {
        "name": "pjson.test",
        "ticked": True,
        "wildcard": False,
        "wildcard_offered": True,
    } in form["names"]

    def issue(**body: Any) -> Any:
        return client.post(
            json_api=True, json_body={"action": "issue", "vhost": "pjson.test", **body}
        )

    refused = issue(names=["*.pjson.test"], challenge="http-01")
    assert refused.status == 400 and "only be validated through DNS" in refused.json()["errors"][0]
    refused = issue(names=["pjson.test"], challenge="tls-alpn-01")
    assert refused.status == 400 and "Unknown challenge" in refused.json()["errors"][0]
    refused = issue(names=["*.someone-else.test"])
    assert refused.status == 403

    # A wildcard where the zone is not on this server: said so, with what to do.
    away = issue(names=["*.pjaway.test"])
    assert away.status == 422, away.body[:800]
    text = away.json()["errors"][0]
    assert "no DNS zone of this cPanel account holds" in text and "Untick Wildcard" in text

    # dns-01 asked for a plain name: used, and reported.
    got = issue(names=["pjson.test", "*.pjson.test"], challenge="dns")
    assert got.status == 200, got.body[:800]
    data = got.json()["data"]
    assert data["challenge_method"] == "dns-01" and data["dry_run"] is False
    assert set(data["names"]) == {"pjson.test", "*.pjson.test"}
    assert served_names(bed, "pjson.test") == {"pjson.test", "*.pjson.test"}


def test_progress_labels_and_advice_for_the_new_steps() -> None:
    assert step_text("revoking") == "Revoking the certificate at the certificate authority"
    fallback = step_text("the site does not answer http-01: validating through DNS instead")
    assert "did not answer the check over HTTP" in fallback and "DNS" in fallback

    timeout = ChallengeFailed("a.test", "the TXT record was not served", kind="dns-propagation")
    assert status_for(timeout) == 504 and "registrar" in message_for(timeout)
    zone = ChallengeFailed("a.test", "no DNS zone", kind="dns-zone")
    assert status_for(zone) == 422 and "Untick Wildcard" in message_for(zone)
    edit = ChallengeFailed("a.test", "could not be added", kind="dns")
    assert status_for(edit) == 502 and "Try again" in message_for(edit)
    revoked = AcmeError("already", kind="alreadyRevoked")
    assert status_for(revoked) == 409 and "Use Remove (without revoking)" in message_for(revoked)
