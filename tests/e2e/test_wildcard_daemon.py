"""A wildcard certificate renewed by the daemon (`letsencrypt-cpaneld --once`), with dns-01
through the user's zone, as issue 7 asks: Pebble validates through pebble-challtestsrv, which
the sandbox's zone edits feed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt_cpanel.config import update_config
from tests.daemon.conftest import DAEMON
from tests.daemon.test_renewal_cycle import spki
from tests.e2e.test_wildcard import assert_zone_clean, record, san
from tests.fixtures.ca_bed import Bed, running_bed
from tests.fixtures.pebble import SHORT_VALIDITY_SECONDS


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    # 20-day certificates: due under FleetSSL's 30-day countdown (renewal_days) at once.
    with running_bed(tmp_path, validity_seconds=SHORT_VALIDITY_SECONDS) as running:
        yield running


def zone_serial(bed: Bed, zone: str) -> int:
    match = re.search(r"SOA\s+\S+\s+\S+\s+\(?\s*(\d+)", bed.zone_text(zone))
    assert match, bed.zone_text(zone)
    return int(match.group(1))


def test_the_daemon_renews_a_wildcard_with_dns01(bed: Bed) -> None:
    user = bed.new_user("dwild", "dwild.test")
    bed.lecp.ok("ssl", "issue", "--user", user, "*.dwild.test", "dwild.test")
    first = bed.sandbox.fetch_site_cert("dwild.test")
    assert san(first) == {"dwild.test", "*.dwild.test"}
    assert record(bed, user)["certificates"]["dwild.test"]["challenge_method"] == "dns-01"
    serial = zone_serial(bed, "dwild.test")
    # Pebble may reuse the account's valid authorizations (pebble.md): the test (never the
    # product) makes the record forget its ACME account, so the renewal is validated afresh.
    path = bed.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    data = json.loads(path.read_text())
    data["accounts"] = {}
    path.write_text(json.dumps(data))

    update_config(bed.root, {"renewal_days": 30})
    proc = subprocess.run(
        [sys.executable, str(DAEMON), "--once"],
        env=bed.lecp.env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 renewed" in proc.stderr, proc.stderr

    second = bed.sandbox.fetch_site_cert("www.dwild.test")  # served through the wildcard
    assert second.serial_number != first.serial_number
    assert san(second) == {"dwild.test", "*.dwild.test"}
    assert spki(second) == spki(first)
    entry = record(bed, user)["certificates"]["dwild.test"]
    assert entry["challenge_method"] == "dns-01" and entry["names"] == [
        "dwild.test",
        "*.dwild.test",
    ]
    # The TXT records went through the user's zone (its serial moved) and are gone again.
    assert zone_serial(bed, "dwild.test") > serial
    assert_zone_clean(bed, "dwild.test", "dwild.test")
