"""decode_json_stream: the same values as json.loads, from a body read chunk by chunk, without
ever holding the whole body (WHM listings of a big server; bench/bench_cycle_idle.py)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from letsencrypt_cpanel.cpanel.envelope import decode_json, decode_json_stream
from letsencrypt_cpanel.errors import CpanelTransportError


def pieces(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def decode(body: bytes, size: int, hook: Any = None) -> Any:
    return decode_json_stream(pieces(body, size), "", "f", transport="t", object_hook=hook)


ENVELOPE = {
    "metadata": {"command": "fetch_ssl_vhosts", "version": 1, "result": 1, "reason": "OK"},
    "data": {
        "vhosts": [
            {
                "servername": "exämple.com",
                "crt": {"not_after": 1803481782, "ratio": 1.5e-3, "cn": {"commonName": "x"}},
                "ipv6": None,
                "needs_sni": True,
                "domains": ["a\\b", 'q"uote', "😀", ""],
            },
            {},
            [],
            -12,
            0.25,
            "tail",
        ],
        "empty": {},
    },
}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100_000])
@pytest.mark.parametrize("indent", [None, 2])
def test_same_value_as_json_loads_whatever_the_chunks(size: int, indent: int | None) -> None:
    text = json.dumps(ENVELOPE, indent=indent, ensure_ascii=False)
    assert decode(text.encode(), size) == json.loads(text)


def test_random_documents_and_cuts() -> None:
    rnd = random.Random(8)

    def value(depth: int) -> Any:
        kinds = [
            lambda: None,
            lambda: rnd.random() < 0.5,
            lambda: rnd.randint(-(10**12), 10**12),
            lambda: rnd.random() * 10 ** rnd.randint(-30, 30),
            lambda: "".join(rnd.choice('ab"\\é😀 \n/') for _ in range(rnd.randrange(6))),
            lambda: [value(depth + 1) for _ in range(rnd.randrange(4))],
            lambda: {str(rnd.random()): value(depth + 1) for _ in range(rnd.randrange(4))},
        ]
        return rnd.choice(kinds[: 7 if depth < 4 else 5])()

    for _ in range(500):
        body = json.dumps({"data": {"list": [value(0) for _ in range(3)]}}).encode()
        size = rnd.choice([1, 3, 50])
        assert decode(body, size) == json.loads(body)
        cut = body[: rnd.randrange(1, len(body))]  # an object cut anywhere is never valid
        with pytest.raises(CpanelTransportError):
            decode(cut, size)


def test_numbers_cut_by_a_chunk_boundary_are_read_whole() -> None:
    for text in ('{"n":[12345,1.5e10,-0.125]}', '{"n":12345}', "[1e5]"):
        for size in range(1, len(text)):
            assert decode(text.encode(), size) == json.loads(text), (text, size)


def test_the_hook_sees_every_object_at_every_level() -> None:
    def recorder(seen: list[list[str]]) -> Any:
        def hook(obj: dict[str, Any]) -> Any:
            seen.append(sorted(obj))
            return ("hooked", sorted(obj))

        return hook

    text = json.dumps(ENVELOPE)
    theirs: list[list[str]] = []
    expected = json.loads(text, object_hook=recorder(theirs))
    whole: list[list[str]] = []
    assert decode(text.encode(), len(text), recorder(whole)) == expected
    assert whole == theirs and len(whole) == 8
    # Cut into small chunks, a value decoded again once more text came sees its inner objects
    # hooked again (the hook must be pure): the result is the same.
    cut: list[list[str]] = []
    assert decode(text.encode(), 5, recorder(cut)) == expected
    assert {str(k) for k in cut} == {str(k) for k in theirs}


def test_entries_are_decoded_while_the_body_still_arrives() -> None:
    entries = [{"servername": f"v{i}.example", "pad": "x" * 500} for i in range(200)]
    body = json.dumps({"metadata": {"result": 1}, "data": {"vhosts": entries}}).encode()
    sent: list[int] = []
    read_when_hooked: list[int] = []

    def chunks() -> Iterator[bytes]:
        for chunk in pieces(body, 4096):
            sent.append(len(chunk))
            yield chunk

    def hook(obj: dict[str, Any]) -> Any:
        if "servername" in obj:
            read_when_hooked.append(sum(sent))
        return obj

    decode_json_stream(chunks(), "", "f", transport="t", object_hook=hook)
    assert len(read_when_hooked) == 200
    # The first entry was decoded with a few KB read, not the whole ~100 KB body.
    assert read_when_hooked[0] <= 2 * 4096 < len(body) // 10


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "empty"),
        (b"  \n ", "empty"),
        (b"<html>cpsess1234 secret</html>", "HTML"),
        (b'{"data": [1, 2] "x"}', "not valid JSON"),
        (b'{"data": [1, 2]} trailing', "not valid JSON"),
        (b'{"data": [1, 2]', "not valid JSON"),
        (b'{"data": "-----BEGIN PRIVATE', "not valid JSON"),
        (b"{data: 1}", "not valid JSON"),
        (b'{"a" 1}', "not valid JSON"),
    ],
)
def test_refusals_never_quote_the_body(body: bytes, reason: str) -> None:
    for size in (1, 4, 1000):
        with pytest.raises(CpanelTransportError) as info:
            decode(body, size)
        assert reason in str(info.value)
        assert "secret" not in str(info.value) and "BEGIN" not in str(info.value)
        assert info.value.__cause__ is None


def test_error_position_counts_from_the_start_of_the_body() -> None:
    body = b'{"data": [' + b"1, " * 10_000 + b"x]}"
    with pytest.raises(CpanelTransportError) as info:
        decode(body, 100)
    assert f"at character {body.index(b'x')}" in str(info.value)


def test_decode_json_is_the_same_decoder_in_one_chunk() -> None:
    text = json.dumps(ENVELOPE)
    assert decode_json(text.encode(), "", "f", transport="t") == json.loads(text)
