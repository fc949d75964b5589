"""Wildcards and dns-01 through `le-cp`, end to end: Pebble validates through pebble-challtestsrv,
which the sandbox's zone edits feed, as a real cPanel's zones feed its nameservers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from tests.fixtures.ca_bed import Bed, running_bed


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with running_bed(tmp_path_factory.mktemp("wildcard")) as running:
        yield running


def san(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(ext.value.get_values_for_type(x509.DNSName))


def record(bed: Bed, user: str) -> dict[str, Any]:
    path = bed.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def assert_zone_clean(bed: Bed, zone: str, *names: str) -> None:
    assert "_acme-challenge" not in bed.zone_text(zone)
    for name in names:
        assert bed.served_txt(f"_acme-challenge.{name}") == set()


def test_wildcard_and_base_issued_installed_and_renewed_with_dns01(bed: Bed) -> None:
    user = bed.new_user("wild", "wild.test", subs=["shop.wild.test"])
    # www.wild.test is covered by *.wild.test: dropped from the order, as the CA requires.
    out = bed.lecp.ok("ssl", "issue", "--user", user, "*.wild.test", "wild.test", "www.wild.test")
    assert "dns-01" in out
    first = bed.sandbox.fetch_site_cert("wild.test")
    assert san(first) == {"wild.test", "*.wild.test"}
    assert san(bed.sandbox.fetch_site_cert("www.wild.test")) == {"wild.test", "*.wild.test"}
    entry = record(bed, user)["certificates"]["wild.test"]
    assert entry["challenge_method"] == "dns-01"
    assert entry["names"] == ["wild.test", "*.wild.test"]
    assert_zone_clean(bed, "wild.test", "wild.test")
    rows = json.loads(bed.lecp.ok("ssl", "list", "--user", user, "--json"))
    assert {r["vhost"]: r["status"] for r in rows}["wild.test"] == "secured"

    out = bed.lecp.ok("ssl", "renew", "--user", user, "--force")
    assert "wild.test: renewed" in out
    second = bed.sandbox.fetch_site_cert("wild.test")
    assert second.serial_number != first.serial_number
    assert san(second) == {"wild.test", "*.wild.test"}
    assert record(bed, user)["certificates"]["wild.test"]["challenge_method"] == "dns-01"
    assert_zone_clean(bed, "wild.test", "wild.test")


def test_a_wildcard_of_a_subdomain_lives_in_the_parent_zone(bed: Bed) -> None:
    user = bed.new_user("wsub", "parentzone.test", subs=["blog.parentzone.test"])
    bed.lecp.ok("ssl", "issue", "--user", user, "blog.parentzone.test", "*.blog.parentzone.test")
    cert = bed.sandbox.fetch_site_cert("blog.parentzone.test")
    assert san(cert) == {"blog.parentzone.test", "*.blog.parentzone.test"}
    assert_zone_clean(bed, "parentzone.test", "blog.parentzone.test")


def test_a_name_whose_zone_is_elsewhere_uses_http01(bed: Bed) -> None:
    user = bed.new_user("away", "home.test", parked=["away.test", "far.test"])
    # The parked domains' DNS is hosted elsewhere: no zone for them on this server.
    for zone in ("away.test", "far.test"):
        (bed.root / f"var/named/{zone}.db").unlink()
    out = bed.lecp.ok("ssl", "issue", "--user", user, "home.test", "away.test")
    assert "http-01" in out
    assert record(bed, user)["certificates"]["home.test"]["challenge_method"] == "http-01"
    assert san(bed.sandbox.fetch_site_cert("away.test")) == {"home.test", "away.test"}

    # dns-01 (asked, or needed by a wildcard) cannot work there, and says why. (A name not
    # validated before: Pebble may reuse a valid authorization, RFC 8555 §7.1.4.)
    for names in (
        ["--challenge", "dns-01", "home.test", "far.test"],
        ["home.test", "*.far.test"],
    ):
        proc = bed.lecp.run("ssl", "issue", "--user", user, *names)
        assert proc.returncode == 1
        assert "no DNS zone of this cPanel account holds" in proc.stderr
    proc = bed.lecp.run("ssl", "issue", "--user", user, "--challenge", "http-01", "*.home.test")
    assert proc.returncode == 1 and "only dns-01" in proc.stderr


def test_when_http01_cannot_work_dns01_is_used(bed: Bed) -> None:
    user = bed.new_user("fall", "fallback.test")
    # The name's A record points at an address where nothing answers: http-01's self-check
    # fails before the CA is asked, and the zone is here, so dns-01 is used instead.
    bed.pebble.add_a("fallback.test", ["127.0.0.2"])
    try:
        out = bed.lecp.ok("ssl", "issue", "--user", user, "fallback.test")
    finally:
        bed.pebble.clear_a("fallback.test")
    assert "dns-01" in out
    assert record(bed, user)["certificates"]["fallback.test"]["challenge_method"] == "dns-01"
    assert san(bed.sandbox.fetch_site_cert("fallback.test")) == {"fallback.test"}
    assert_zone_clean(bed, "fallback.test", "fallback.test")

    # Asked for http-01 explicitly, there is no fallback: the self-check's failure is reported.
    # (A name never validated: Pebble may reuse a valid authorization, RFC 8555 §7.1.4.)
    strict = bed.new_user("strict", "strict.test")
    bed.pebble.add_a("strict.test", ["127.0.0.2"])
    try:
        proc = bed.lecp.run(
            "ssl", "issue", "--user", strict, "--challenge", "http-01", "strict.test"
        )
    finally:
        bed.pebble.clear_a("strict.test")
    assert proc.returncode == 1 and "connection refused" in proc.stderr
