"""BIND zone files under var/named, and UAPI DNS::parse_zone / DNS::mass_edit_zone over them
(cpanel-api.md §2 DNS::parse_zone, DNS::mass_edit_zone)."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shlex
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpanel_sandbox import layout

PROXY_A_LABELS = ("cpanel", "webmail", "webdisk", "cpcalendars", "cpcontacts", "autodiscover")
RECORD_TYPES = ("A", "AAAA", "CAA", "CNAME", "MX", "NS", "SRV", "TXT")
CLASSES = ("IN", "CH", "HS")


@dataclass
class Entry:
    """One zone entry: a record, a `$` control line or a comment, and the lines it spans."""

    line_index: int
    line_count: int
    kind: str  # record | control | comment
    text: str = ""
    dname: str = ""
    ttl: int = 0
    record_type: str = ""
    data: tuple[str, ...] = ()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def write_new_zone(root: Path, zone: str, host: str, *, extra_labels: Sequence[str] = ()) -> None:
    """A fresh zone as cPanel makes it: SOA (serial YYYYMMDDNN), NS, A records to the sandbox."""
    serial = time.strftime("%Y%m%d") + "01"
    lines = [
        f"; cPanel first:11.120.0.16 (update_time):{int(time.time())} "
        "Cpanel::ZoneFile::VERSION:1.3",
        f"; Zone file for {zone}",
        "$TTL 14400",
        f"{zone}.\t86400\tIN\tSOA\tns1.{host}.\troot.{host}.\t{serial} 3600 1800 1209600 86400",
        f"{zone}.\t86400\tIN\tNS\tns1.{host}.",
        f"{zone}.\t14400\tIN\tA\t{layout.SANDBOX_IP}",
    ]
    labels = ["www", "mail", *PROXY_A_LABELS]
    for label in extra_labels:
        labels += [label, f"www.{label}"]
    lines += [f"{label}\t14400\tIN\tA\t{layout.SANDBOX_IP}" for label in labels]
    path = layout.zone_file(root, zone)
    if not path.exists():
        layout.write_file(path, "\n".join(lines) + "\n", mode=0o644)


def _tokens(text: str) -> list[str]:
    """Split an entry's text on blanks, keeping "quoted strings" (quotes removed) and dropping ;."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ";"
    lexer.escapedquotes = '"'
    lexer.quotes = '"'
    return list(lexer)


def _without_comment(line: str) -> str:
    """The line without its `;` comment (a `;` inside "quotes" is data)."""
    quoted = False
    for pos, char in enumerate(line):
        if char == '"' and (pos == 0 or line[pos - 1] != "\\"):
            quoted = not quoted
        elif char == ";" and not quoted:
            return line[:pos].rstrip() if line[:pos].strip() else ""
    return line


def parse(text: str, zone: str) -> list[Entry]:
    """The zone's entries in file order. Multi-line ( … ) records span several lines."""
    entries: list[Entry] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    default_ttl, owner, i = 14400, f"{zone}.", 0
    while i < len(lines):
        start, line = i, _without_comment(lines[i])
        while line.count("(") > line.count(")") and i + 1 < len(lines):
            i += 1
            line += " " + _without_comment(lines[i])
        i += 1
        if not line.strip() and lines[start].strip().startswith(";"):
            line = lines[start]
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(";"):
            entries.append(Entry(start, i - start, "comment", text=stripped))
            continue
        if stripped.startswith("$"):
            entries.append(Entry(start, i - start, "control", text=stripped))
            words = stripped.split()
            if words[0].upper() == "$TTL" and len(words) > 1 and words[1].isdigit():
                default_ttl = int(words[1])
            continue
        words = _tokens(line.replace("(", " ").replace(")", " "))
        if not line[:1].isspace():
            owner = words.pop(0)
        ttl = default_ttl
        while words and (words[0].isdigit() or words[0].upper() in CLASSES):
            ttl = int(words[0]) if words[0].isdigit() else ttl
            words.pop(0)
        rtype = words.pop(0).upper() if words else ""
        dname = f"{zone}." if owner == "@" else owner
        entries.append(Entry(start, i - start, "record", "", dname, ttl, rtype, tuple(words)))
    return entries


def soa_serial(entries: list[Entry]) -> int | None:
    for e in entries:
        if e.kind == "record" and e.record_type == "SOA" and len(e.data) >= 3:
            return int(e.data[2])
    return None


def entry_json(e: Entry) -> dict[str, Any]:
    if e.kind != "record":
        return {"line_index": e.line_index, "type": e.kind, "text_b64": _b64(e.text)}
    return {
        "line_index": e.line_index,
        "type": "record",
        "dname_b64": _b64(e.dname),
        "ttl": e.ttl,
        "record_type": e.record_type,
        "data_b64": [_b64(d) for d in e.data],
    }


def _check_zone(root: Path, user: str, zone: str | None) -> Path:
    from cpanel_sandbox import accounts

    zone = (zone or "").lower().rstrip(".")
    path = layout.zone_file(root, zone)
    if zone not in accounts.zone_names(root, user) or not path.is_file():
        raise layout.ApiError(f"You do not control a DNS zone named “{zone}”.")
    return path


def parse_zone(root: Path, user: str, args: layout.Args) -> list[dict[str, Any]]:
    zone = args.get("zone")
    path = _check_zone(root, user, zone)
    return [entry_json(e) for e in parse(path.read_text(encoding="utf-8"), str(zone).lower())]


def _record_line(item: dict[str, Any]) -> str:
    rtype = str(item["record_type"]).upper()
    data = [str(d) for d in item["data"]]
    if rtype == "TXT":
        data = ['"' + d.replace("\\", "\\\\").replace('"', '\\"') + '"' for d in data]
    return f"{item['dname']}\t{int(item['ttl'])}\tIN\t{rtype}\t{' '.join(data)}"


def _decode_change(raw: str, what: str) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except ValueError as exc:
        raise layout.ApiError(f"The “{what}” value is not valid JSON: {exc}") from exc
    if not isinstance(item, dict) or not {"dname", "ttl", "record_type", "data"} <= item.keys():
        raise layout.ApiError(f"Each “{what}” requires “dname”, “ttl”, “record_type”, and “data”.")
    if not isinstance(item["data"], list):
        raise layout.ApiError("“data” must be an array.")
    if str(item["record_type"]).upper() not in RECORD_TYPES:
        allowed = ", ".join(f"“{t}”" for t in RECORD_TYPES)
        raise layout.ApiError(
            f"This interface cannot create “{item['record_type']}” records. "
            f"It can only create {allowed} records."
        )
    return item


def _next_serial(old: int) -> int:
    today = int(time.strftime("%Y%m%d")) * 100
    return max(old + 1, today + 1)


def mass_edit_zone(root: Path, user: str, args: layout.Args) -> dict[str, Any]:
    zone = str(args.get("zone") or "").lower().rstrip(".")
    path = _check_zone(root, user, zone)
    adds = [_decode_change(a, "add") for a in args.get_multiple("add")]
    edits = [_decode_change(e, "edit") for e in args.get_multiple("edit")]
    removes = args.get_multiple("remove")
    if not adds and not edits and not removes:
        raise layout.ApiError("You must provide at least one change to the DNS zone.")
    text = path.read_text(encoding="utf-8")
    entries = parse(text, zone)
    serial = soa_serial(entries) or 0
    given = args.get("serial") or ""
    if given != str(serial):
        # S1 returns the APICommon "Stale" payload in data with status 0 (§2 mass_edit_zone).
        raise layout.ApiError(
            f"The DNS zone “{zone}” has changed (serial “{serial}”, not “{given}”). "
            "Reload the zone, and try again.",
            data={"type": "Stale", "detail": {"current_serial": serial}},
        )
    by_line = {e.line_index: e for e in entries if e.kind == "record"}
    lines = text.split("\n")
    touched: set[str] = set()
    for raw in removes:
        e = by_line.get(int(raw)) if raw.isdigit() else None
        if e is None or e.record_type == "SOA":
            raise layout.ApiError(f"No removable record is at line index “{raw}”.")
        touched.add(e.dname)
        lines[e.line_index : e.line_index + e.line_count] = [None] * e.line_count  # type: ignore[list-item]
    for item in edits:
        e = by_line.get(int(item.get("line_index", -1)))
        if e is None:
            raise layout.ApiError(f"No record is at line index “{item.get('line_index')}”.")
        touched |= {e.dname, str(item["dname"])}
        # Each record keeps its number of lines (S2 mass_edit_zone): pad with blank lines.
        lines[e.line_index : e.line_index + e.line_count] = [_record_line(item)] + [""] * (
            e.line_count - 1
        )
    kept = [ln for ln in lines if ln is not None]
    if kept and kept[-1] == "":
        kept.pop()
    kept += [_record_line(item) for item in adds]
    touched |= {str(item["dname"]) for item in adds}
    new_serial = _next_serial(serial)
    new_text = _replace_serial("\n".join(kept) + "\n", zone, serial, new_serial)
    layout.write_file(path, new_text, mode=path.stat().st_mode & 0o777)
    _sync_challtestsrv(root, zone, new_text, touched)
    return {"new_serial": new_serial}


def _replace_serial(text: str, zone: str, old: int, new: int) -> str:
    for e in parse(text, zone):
        if e.kind == "record" and e.record_type == "SOA":
            lines = text.split("\n")
            span = "\n".join(lines[e.line_index : e.line_index + e.line_count])
            span = re.sub(rf"\b{old}\b", str(new), span, count=1)
            lines[e.line_index : e.line_index + e.line_count] = span.split("\n")
            return "\n".join(lines)
    return text


def _fqdn(dname: str, zone: str) -> str:
    """Absolute name with the trailing dot challtestsrv needs (pebble.md §4)."""
    if dname.endswith("."):
        return dname.lower()
    if dname in ("@", ""):
        return f"{zone}."
    return f"{dname}.{zone}.".lower()


def _sync_challtestsrv(root: Path, zone: str, text: str, touched: set[str]) -> None:
    """Mirror the TXT records of every touched name into pebble-challtestsrv, when configured."""
    base = str(layout.sandbox_config(root).get("challtestsrv") or "").rstrip("/")
    if not base.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        return
    txt: dict[str, list[str]] = {}
    for e in parse(text, zone):
        if e.kind == "record" and e.record_type == "TXT":
            txt.setdefault(_fqdn(e.dname, zone), []).append("".join(e.data))
    for host in sorted({_fqdn(d, zone) for d in touched}):
        _post(f"{base}/clear-txt", {"host": host})
        for value in txt.get(host, []):
            _post(f"{base}/set-txt", {"host": host, "value": value})


def _post(url: str, body: dict[str, str]) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=5):  # noqa: S310
        pass
