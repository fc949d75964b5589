"""dns-01 through a user's cPanel zone, against the sandbox whose zone edits reach
pebble-challtestsrv (the DNS Pebble validates with): add, wait, clean up, stale serials."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from letsencrypt_cpanel.cpanel import NewRecord, UserAPI, soa_serial
from letsencrypt_cpanel.dns_challenge import CpanelDnsSolver, find_zone, txt_value
from letsencrypt_cpanel.dns_wait import TxtWatcher
from letsencrypt_cpanel.errors import ChallengeFailed
from tests.fixtures.ca_bed import Bed, running_bed

TOKEN = "dG9rZW4tZm9yLWRucy0wMS10ZXN0cw"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with running_bed(tmp_path_factory.mktemp("dns01")) as running:
        yield running


@pytest.fixture(scope="module")
def user(bed: Bed) -> str:
    return bed.new_user("dnsu", "zone.test", subs=["blog.zone.test"], addons=["other.test"])


@pytest.fixture
def api(bed: Bed, user: str) -> Iterator[UserAPI]:
    with bed.user_api(user) as user_api:
        yield user_api


def _solver(bed: Bed, api: UserAPI, timeout: float = 10.0) -> CpanelDnsSolver:
    return CpanelDnsSolver(api, TxtWatcher((bed.pebble.dns_server,), timeout=timeout))


def _challenge_lines(api: UserAPI, zone: str) -> list[Any]:
    return [
        line
        for line in api.parse_zone(zone)
        if line.record_type == "TXT" and line.name.lower().startswith("_acme-challenge")
    ]


def test_find_zone_walks_up_the_labels(api: UserAPI) -> None:
    found = find_zone(api, "deep.blog.zone.test")
    assert found is not None and found[0] == "zone.test"
    found = find_zone(api, "*.other.test")
    assert found is not None and found[0] == "other.test"
    assert find_zone(api, "www.nowhere.test") is None  # not this account's zone


def test_wildcard_and_base_values_added_served_and_removed(bed: Bed, api: UserAPI) -> None:
    solver = _solver(bed, api)
    # A wildcard and its base name: two authorizations, one record name, two values.
    auths = {"tok-base-xxxxxxxxxxxxxxxx": "base.key-auth", "tok-wild-xxxxxxxxxxxxxxxx": "wild.ka"}
    for token, key_auth in auths.items():
        solver.present("blog.zone.test", token, key_auth)
    for token, key_auth in auths.items():
        solver.check("blog.zone.test", token, key_auth)
    values = {txt_value(k) for k in auths.values()}
    assert bed.served_txt("_acme-challenge.blog.zone.test") == values
    assert {"".join(line.data) for line in _challenge_lines(api, "zone.test")} == values
    for token in auths:
        solver.cleanup("blog.zone.test", token)
    assert _challenge_lines(api, "zone.test") == []
    assert bed.served_txt("_acme-challenge.blog.zone.test") == set()
    assert solver.leftovers == []


def test_cleanup_leaves_other_records_alone(bed: Bed, api: UserAPI) -> None:
    # Someone's own TXT record at the same name (e.g. another tool's) must survive our cleanup.
    lines = api.parse_zone("zone.test")
    theirs = NewRecord("_acme-challenge", 300, "TXT", ("somebody-elses",))
    api.mass_edit_zone("zone.test", soa_serial(lines), add=[theirs])
    solver = _solver(bed, api)
    solver.present("zone.test", TOKEN, "key-auth")
    solver.cleanup("zone.test", TOKEN)
    left = _challenge_lines(api, "zone.test")
    assert ["".join(line.data) for line in left] == ["somebody-elses"]
    api.mass_edit_zone(
        "zone.test", soa_serial(api.parse_zone("zone.test")), remove=[left[0].line_index]
    )


class _CompetingEditor:
    """A transport that lets another session edit the zone just before our first edit lands,
    so our serial is stale (as when the user edits the zone in cPanel meanwhile)."""

    def __init__(self, inner: Any, other: UserAPI, times: int) -> None:
        self.inner = inner
        self.other = other
        self.left = times
        self.edits = 0

    def call_uapi(self, module: str, func: str, args: Any) -> dict[str, Any]:
        if func == "mass_edit_zone":
            self.edits += 1
            if self.left > 0:
                self.left -= 1
                zone = str(args["zone"])
                serial = soa_serial(self.other.parse_zone(zone))
                record = NewRecord(f"competitor{self.left}", 300, "TXT", ("x",))
                self.other.mass_edit_zone(zone, serial, add=[record])
        result: dict[str, Any] = self.inner.call_uapi(module, func, args)
        return result


def test_a_stale_serial_is_retried_and_succeeds(bed: Bed, user: str, api: UserAPI) -> None:
    with bed.user_api(user) as other:
        editor = _CompetingEditor(api.transport, other, times=2)
        solver = _solver(bed, UserAPI(editor))  # type: ignore[arg-type]
        solver.present("other.test", TOKEN, "key-auth-stale")
        assert editor.edits == 3  # two refused as stale, the third landed
        solver.check("other.test", TOKEN, "key-auth-stale")
        assert txt_value("key-auth-stale") in bed.served_txt("_acme-challenge.other.test")
        editor.left = 1
        solver.cleanup("other.test", TOKEN)
        assert solver.leftovers == []
    text = bed.zone_text("other.test")
    assert "competitor1" in text and "competitor0" in text  # the other edits were kept
    assert "_acme-challenge" not in text


def test_a_name_whose_zone_is_not_here(bed: Bed, api: UserAPI) -> None:
    solver = _solver(bed, api)
    with pytest.raises(ChallengeFailed) as caught:
        solver.present("www.nowhere.test", TOKEN, "key-auth")
    assert caught.value.kind == "dns-zone"
    solver.cleanup("www.nowhere.test", TOKEN)  # nothing was added: nothing to do, no error


def test_waiting_gives_up_with_the_servers_named(bed: Bed) -> None:
    watcher = TxtWatcher((bed.pebble.dns_server,), timeout=0.5)
    with pytest.raises(ChallengeFailed) as caught:
        watcher.wait_for("_acme-challenge.never.zone.test", "not-there", "zone.test")
    assert caught.value.kind == "dns-propagation"
    assert bed.pebble.dns_server in caught.value.detail


def test_unpublished_values_fail_the_check_not_the_ca(bed: Bed, api: UserAPI) -> None:
    # `check` waits for the value itself: another value at the name does not satisfy it.
    solver = _solver(bed, api, timeout=0.5)
    solver.present("zone.test", TOKEN, "key-auth-check")
    try:
        solver.watcher.wait_for(
            "_acme-challenge.zone.test", txt_value("key-auth-check"), "zone.test"
        )
        with pytest.raises(ChallengeFailed):
            solver.watcher.wait_for("_acme-challenge.zone.test", "a-different-value", "zone.test")
    finally:
        solver.cleanup("zone.test", TOKEN)
    assert _challenge_lines(api, "zone.test") == []
