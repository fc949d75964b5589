"""WHM's "Issue or renew the service certificate" is the admin's explicit action: it issues even
while the daemon's upkeep of that certificate is off in Options, and "renew even if not due"
(`force`) only means that: a good certificate is left alone without it, replaced with it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt_cpanel import service_certs
from tests.automation.conftest import Bed, make_bed
from tests.automation.test_service_cert import presented
from tests.whm.pages import WhmClient, install_whm_page


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    yield from make_bed(tmp_path)


def test_the_action_issues_while_the_daemons_upkeep_is_off(bed: Bed) -> None:
    bed.lecp.ok("hostcert", "disable")
    assert not bed.settings().hostcert_enabled
    install_whm_page(bed.sandbox)
    client = WhmClient.login(bed.sandbox)

    reply = client.post({"action": "service_cert"}, json_api=True)
    assert reply.status == 200, reply.body[:800]
    assert reply.json()["data"]["title"] == "Service certificate: issued"
    first = presented(bed.sandbox.whm_port)
    assert "Pebble" in first.issuer.rfc4514_string()

    # Not due, not forced: left alone. Forced: a new one.
    reply = client.post({"action": "service_cert"}, json_api=True)
    assert reply.status == 200 and reply.json()["data"]["title"] == "Service certificate: not due"
    assert presented(bed.sandbox.whm_port).serial_number == first.serial_number
    reply = client.post({"action": "service_cert", "force": "1"}, json_api=True)
    assert reply.status == 200 and reply.json()["data"]["title"] == "Service certificate: issued"
    assert presented(bed.sandbox.whm_port).serial_number != first.serial_number

    # The daemon's own upkeep is still off: its cycle does nothing.
    outcome = service_certs.run_once(bed.settings(), bed.root_side().whm, time.time())
    assert outcome.action == service_certs.DISABLED


def test_le_cp_hostcert_issue_is_explicit_too_and_forces_only_when_asked(bed: Bed) -> None:
    bed.lecp.ok("hostcert", "disable")
    assert "service certificate issued" in bed.lecp.ok("hostcert", "issue")
    first = presented(bed.sandbox.whm_port)
    assert "service certificate not due" in bed.lecp.ok("hostcert", "issue")
    assert presented(bed.sandbox.whm_port).serial_number == first.serial_number
    assert "service certificate issued" in bed.lecp.ok("hostcert", "issue", "--force")
    assert presented(bed.sandbox.whm_port).serial_number != first.serial_number
