"""DNS::parse_zone and DNS::mass_edit_zone over BIND files (cpanel-api.md §2), and the mirror of
TXT records into pebble-challtestsrv (pebble.md §4)."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cpanel_sandbox import layout, zones
from tests.sandbox.conftest import call


def _decode(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    if "dname_b64" in entry:
        out["dname"] = base64.b64decode(entry["dname_b64"]).decode()
        out["data"] = [base64.b64decode(d).decode() for d in entry["data_b64"]]
    if "text_b64" in entry:
        out["text"] = base64.b64decode(entry["text_b64"]).decode()
    return out


def _zone(root: Path, user: str, zone: str = "example.com") -> list[dict[str, Any]]:
    return [_decode(e) for e in call(root, user, "DNS", "parse_zone", zone=zone)["data"]]


def _serial(entries: list[dict[str, Any]]) -> str:
    (soa,) = [e for e in entries if e.get("record_type") == "SOA"]
    return str(soa["data"][2])


def test_parse_zone_of_a_new_account(root: Path, alice: str) -> None:
    entries = _zone(root, alice)
    assert re.fullmatch(r"\d{8}01", _serial(entries))
    kinds = {e["type"] for e in entries}
    assert kinds == {"comment", "control", "record"}
    names = {(e["dname"], e["record_type"]) for e in entries if e["type"] == "record"}
    assert ("example.com.", "A") in names and ("www", "A") in names and ("cpanel", "A") in names
    assert ("blog", "A") in names  # the subdomain lives in the main zone
    assert [e["line_index"] for e in entries] == sorted(e["line_index"] for e in entries)
    assert _zone(root, alice, "addon.net")  # an addon domain has its own zone


def test_parse_zone_refuses_zones_the_user_does_not_control(root: Path, alice: str) -> None:
    for zone in ("other.test", "blog.example.com"):
        body = call(root, alice, "DNS", "parse_zone", zone=zone)
        assert body["status"] == 0
        assert body["errors"] == [f"You do not control a DNS zone named “{zone}”."]


def _add(dname: str, value: str, ttl: int = 300) -> str:
    return json.dumps({"dname": dname, "ttl": ttl, "record_type": "TXT", "data": [value]})


def test_mass_edit_add_edit_remove_and_serial(root: Path, alice: str) -> None:
    serial = _serial(_zone(root, alice))
    body = call(
        root,
        alice,
        "DNS",
        "mass_edit_zone",
        zone="example.com",
        serial=serial,
        add=[_add("_acme-challenge", "tok+en/1="), _add("_acme-challenge.blog", "two")],
    )
    assert body["status"] == 1, body["errors"]
    new_serial = body["data"]["new_serial"]
    assert isinstance(new_serial, int) and new_serial > int(serial)
    entries = _zone(root, alice)
    assert _serial(entries) == str(new_serial)
    txt = [e for e in entries if e.get("record_type") == "TXT"]
    assert [(e["dname"], e["data"], e["ttl"]) for e in txt] == [
        ("_acme-challenge", ["tok+en/1="], 300),
        ("_acme-challenge.blog", ["two"], 300),
    ]

    # A stale serial is refused with status 0 and an error payload in data.
    body = call(root, alice, "DNS", "mass_edit_zone", zone="example.com", serial=serial, remove="1")
    assert body["status"] == 0 and body["errors"] and body["data"]["type"] == "Stale"

    edit = json.loads(_add("_acme-challenge", "changed"))
    edit["line_index"] = txt[0]["line_index"]
    body = call(
        root,
        alice,
        "DNS",
        "mass_edit_zone",
        zone="example.com",
        serial=str(new_serial),
        edit=json.dumps(edit),
        **{"remove-1": str(txt[1]["line_index"])},
    )
    assert body["status"] == 1, body["errors"]
    txt = [e for e in _zone(root, alice) if e.get("record_type") == "TXT"]
    assert [(e["dname"], e["data"]) for e in txt] == [("_acme-challenge", ["changed"])]


def test_mass_edit_failures(root: Path, alice: str) -> None:
    serial = _serial(_zone(root, alice))
    body = call(root, alice, "DNS", "mass_edit_zone", zone="example.com", serial=serial)
    assert body["errors"] == ["You must provide at least one change to the DNS zone."]
    bad = json.dumps({"dname": "x", "ttl": 1, "record_type": "TXT"})
    body = call(root, alice, "DNS", "mass_edit_zone", zone="example.com", serial=serial, add=bad)
    assert body["errors"] == ["Each “add” requires “dname”, “ttl”, “record_type”, and “data”."]
    body = call(root, alice, "DNS", "mass_edit_zone", zone="x.test", serial=serial, add=bad)
    assert body["errors"] == ["You do not control a DNS zone named “x.test”."]


def test_hand_written_multiline_soa_zone(root: Path, alice: str) -> None:
    layout.zone_file(root, "parked.org").write_text(
        "$TTL 3600\n"
        "@\tIN\tSOA\tns1.example.net. hostmaster.parked.org. (\n"
        "\t\t2024010101 ; serial\n\t\t3600 1800 1209600 86400 )\n"
        "\tIN\tNS\tns1.example.net.\n"
        'txt\t60\tIN\tTXT\t"a b" "c;d" ; why\n'
    )
    entries = _zone(root, alice, "parked.org")
    soa = next(e for e in entries if e.get("record_type") == "SOA")
    assert soa["dname"] == "parked.org." and soa["line_index"] == 1 and soa["ttl"] == 3600
    assert soa["data"] == [
        "ns1.example.net.",
        "hostmaster.parked.org.",
        "2024010101",
        "3600",
        "1800",
        "1209600",
        "86400",
    ]
    ns = next(e for e in entries if e.get("record_type") == "NS")
    assert ns["line_index"] == 4 and ns["dname"] == "parked.org."
    txt = next(e for e in entries if e.get("record_type") == "TXT")
    assert txt["data"] == ["a b", "c;d"] and txt["ttl"] == 60
    body = call(
        root,
        alice,
        "DNS",
        "mass_edit_zone",
        zone="parked.org",
        serial="2024010101",
        add=_add("new", "v"),
    )
    assert body["status"] == 1, body["errors"]
    assert _serial(_zone(root, alice, "parked.org")) == str(body["data"]["new_serial"])


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.calls.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def challtestsrv(root: Path) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    handler = type("Handler", (_Recorder,), {"calls": calls})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    layout.write_file(layout.sandbox_json(root), json.dumps({"challtestsrv": url}))
    yield calls
    server.shutdown()
    server.server_close()


def test_txt_changes_are_mirrored_to_challtestsrv(
    root: Path, alice: str, challtestsrv: list[tuple[str, dict[str, Any]]]
) -> None:
    serial = _serial(_zone(root, alice))
    add = [_add("_acme-challenge", "one"), _add("_acme-challenge.example.com.", "two")]
    body = call(root, alice, "DNS", "mass_edit_zone", zone="example.com", serial=serial, add=add)
    assert body["status"] == 1, body["errors"]
    host = "_acme-challenge.example.com."  # trailing dot required by challtestsrv
    assert ("/clear-txt", {"host": host}) in challtestsrv
    sets = [c for c in challtestsrv if c[0] == "/set-txt"]
    assert sorted(c[1]["value"] for c in sets) == ["one", "two"]
    assert all(c[1]["host"] == host for c in sets)

    challtestsrv.clear()
    first = next(e for e in _zone(root, alice) if e.get("record_type") == "TXT")
    body = call(
        root,
        alice,
        "DNS",
        "mass_edit_zone",
        zone="example.com",
        serial=str(body["data"]["new_serial"]),
        remove=str(first["line_index"]),
    )
    assert body["status"] == 1, body["errors"]
    assert challtestsrv == [
        ("/clear-txt", {"host": host}),
        ("/set-txt", {"host": host, "value": "two"}),
    ]


def test_new_zone_is_not_overwritten(root: Path) -> None:
    path = layout.zone_file(root, "keep.test")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("; mine\n")
    zones.write_new_zone(root, "keep.test", "server.sandbox.test")
    assert path.read_text() == "; mine\n"
