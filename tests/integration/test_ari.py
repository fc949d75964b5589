"""ARI (RFC 9773) and profiles: the window logic alone, then renewals through `le-cp` against
a directory that offers `renewalInfo` (tests/fixtures/ari_proxy.py, in front of Pebble 2.4.0)."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from acme.client import _renewal_info_path_component
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from letsencrypt_cpanel.acme_ari import (
    ari_cert_id,
    parse_renewal_info,
    remember_window,
    remembered_choice,
)
from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.renewal import run_once
from letsencrypt_cpanel.state import StateDB
from tests.fixtures.ari_proxy import AriProxy, running_ari_proxy
from tests.fixtures.ca_bed import Bed, running_bed
from tests.fixtures.pebble import SHORT_VALIDITY_SECONDS

NOW = 1_800_000_000.0


def _iso(offset: float) -> str:
    return dt.datetime.fromtimestamp(NOW + offset, dt.timezone.utc).isoformat()


# -- the window logic -------------------------------------------------------------------------


def test_a_window_is_parsed_and_its_retry_after_bounded() -> None:
    body = {"suggestedWindow": {"start": _iso(3600), "end": _iso(7200)}, "explanationURL": "u"}
    window = parse_renewal_info(body, 120, NOW)
    assert (window.start, window.end, window.recheck_at) == (NOW + 3600, NOW + 7200, NOW + 120)
    assert window.explanation_url == "u"
    assert parse_renewal_info(body, None, NOW).recheck_at == NOW + 6 * 3600
    assert parse_renewal_info(body, 10**9, NOW).recheck_at == NOW + 24 * 3600
    for bad in (
        {},
        {"suggestedWindow": {"start": _iso(0)}},
        {"suggestedWindow": {"start": _iso(10), "end": _iso(0)}},  # ends before it starts
        ["not", "an", "object"],
    ):
        with pytest.raises(ValueError):
            parse_renewal_info(bad, None, NOW)


def test_the_chosen_moment_is_kept_until_the_window_moves() -> None:
    extras: dict[str, Any] = {}
    body = {"suggestedWindow": {"start": _iso(100), "end": _iso(200)}}
    first = remember_window(extras, parse_renewal_info(body, 60, NOW), random.Random(1))
    assert NOW + 100 <= first <= NOW + 200
    again = remember_window(extras, parse_renewal_info(body, 60, NOW), random.Random(2))
    assert again == first
    assert remembered_choice(extras, NOW + 30) == first
    assert remembered_choice(extras, NOW + 61) is None  # Retry-After passed: ask again
    moved = {"suggestedWindow": {"start": _iso(-200), "end": _iso(-100)}}
    assert remember_window(extras, parse_renewal_info(moved, 60, NOW)) <= NOW - 100


# -- through le-cp, against a CA that offers renewalInfo ----------------------------------------


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with running_bed(
        tmp_path_factory.mktemp("ari"), validity_seconds=SHORT_VALIDITY_SECONDS
    ) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(bed: Bed) -> Iterator[AriProxy]:
    with running_ari_proxy(bed.pebble) as running:
        bed.lecp.ok("config", "set", "acme_directory", running.directory_url)
        yield running


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _record(bed: Bed, user: str) -> dict[str, Any]:
    path = bed.root / "home" / user / ".cpanel/nvdata/letsencrypt-cpanel"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_cas_window_decides_when_a_certificate_is_renewed(bed: Bed, proxy: AriProxy) -> None:
    user = bed.new_user("ari", "ari.test")
    bed.lecp.ok("ssl", "issue", "--user", user, "ari.test")
    first = bed.sandbox.fetch_site_cert("ari.test")
    assert "replaces" not in proxy.orders[-1]
    # Our id is the one RFC 9773 §4.1 defines (the acme library computes it the same way).
    assert ari_cert_id(_pem(first)) == _renewal_info_path_component(first)

    # A 20-day certificate, 20 days left: the lifetime rule says "not yet". The CA's window
    # in the past says "now".
    proxy.set_window(dt.timedelta(days=-2), dt.timedelta(days=-1))
    out = bed.lecp.ok("ssl", "renew", "--user", user)
    assert "ari.test: renewed" in out
    assert ari_cert_id(_pem(first)) in proxy.ari_requests
    second = bed.sandbox.fetch_site_cert("ari.test")
    assert second.serial_number != first.serial_number
    # RFC 9773 §5: the renewal order names the certificate it replaces.
    assert proxy.orders[-1]["replaces"] == ari_cert_id(_pem(first))

    # Now the lifetime rule says "renew" (fewer than 30 days left), but the CA moved the
    # window two months out: the renewal waits.
    bed.lecp.ok("config", "set", "renewal_days", "30")
    try:
        proxy.set_window(dt.timedelta(days=60), dt.timedelta(days=61))
        out = bed.lecp.ok("ssl", "renew", "--user", user)
        assert "ari.test: not due" in out
        assert bed.sandbox.fetch_site_cert("ari.test").serial_number == second.serial_number
        saved = _record(bed, user)["certificates"]["ari.test"]["ari"]
        assert saved["start"] <= saved["chosen"] <= saved["end"]
        assert saved["start"] > dt.datetime.now(dt.timezone.utc).timestamp() + 59 * 86400
    finally:
        bed.lecp.ok("config", "set", "renewal_days", "0")


def test_a_profile_the_ca_lists_is_asked_for(bed: Bed, proxy: AriProxy) -> None:
    user = bed.new_user("prof", "profile.test", addons=["other-profile.test"])
    proxy.profiles = {"classic": "90 days", "shortlived": "6 days"}
    try:
        bed.lecp.ok("config", "set", "acme_profile", "shortlived")
        bed.lecp.ok("ssl", "issue", "--user", user, "profile.test")
        assert proxy.orders[-1]["profile"] == "shortlived"
        bed.lecp.ok("config", "set", "acme_profile", "nosuch")
        proc = bed.lecp.run("ssl", "issue", "--user", user, "other-profile.test")
        assert proc.returncode == 1 and "offers the profiles classic, shortlived" in proc.stderr
    finally:
        bed.lecp.ok("config", "set", "acme_profile", "")
        proxy.profiles = {}
    bed.lecp.ok("ssl", "issue", "--user", user, "other-profile.test")
    assert "profile" not in proxy.orders[-1]


def test_root_asks_the_ca_between_visits_and_renews_when_the_window_moves(
    bed: Bed, proxy: AriProxy
) -> None:
    """The daemon's cycle (ari_watch.py): a certificate not due, its user's next visit weeks
    away; the CA moves the window into the past (a revocation ahead): root, asking the CA
    itself, plans the visit now and the worker renews, within the same cycle."""
    user = bed.new_user("ariroot", "ari-root.test")
    proxy.set_window(dt.timedelta(days=60), dt.timedelta(days=61))
    bed.lecp.ok("ssl", "issue", "--user", user, "ari-root.test")
    first = bed.sandbox.fetch_site_cert("ari-root.test")
    cert_id = ari_cert_id(_pem(first))
    settings = load_settings({"LECP_ROOT": str(bed.root)})
    with StateDB.open(settings) as db:
        run_once(time.time(), settings, db)  # the first cycle visits everyone
        row = db.vhost(user, "ari-root.test")
        assert row is not None and row.status == "not_due"
        assert row.next_attempt > time.time() + 59 * 86400  # the moment chosen in the window
        waiting = {(u, v): i for u, v, i, _t in db.ari_to_ask(int(time.time()) + 1, 100)}
        assert waiting[(user, "ari-root.test")] == cert_id

        proxy.set_window(dt.timedelta(days=-2), dt.timedelta(days=-1))
        asked = len(proxy.ari_requests)
        result = run_once(time.time(), settings, db)
    assert not result.full_sweep
    assert cert_id in proxy.ari_requests[asked:]
    assert bed.sandbox.fetch_site_cert("ari-root.test").serial_number != first.serial_number
    assert user in result.users_run
