"""The transport contract, and the envelope checks every transport runs once per call.

A UAPI transport returns the bare UAPI result object after `check_uapi_result` accepted it; a WHM
transport returns the WHM API 1 envelope after `check_whm_envelope` accepted it. The API objects
(`UserAPI`, `WhmAPI`) therefore never look at `status` or `metadata.result` again.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from ..errors import CpanelAPIError, CpanelTransportError
from .quirks import as_dict, as_int, as_str, as_str_list

ArgValue = str | Sequence[str]
Args = Mapping[str, ArgValue]


class UapiTransport(Protocol):
    """Calls one UAPI function as one user. Raises `CpanelAPIError` when cPanel refused the call
    (`UapiCallFailed`, carrying `data`), `CpanelTransportError` when no well-formed answer came."""

    def call_uapi(self, module: str, func: str, args: Args) -> dict[str, Any]: ...


class WhmTransport(Protocol):
    """Calls one WHM API 1 function. Same errors as `UapiTransport`; returns the whole envelope
    (`{"metadata": ..., "data": ...}`)."""

    def call_whm(self, func: str, args: Args) -> dict[str, Any]: ...


class UapiCallFailed(CpanelAPIError):
    """UAPI answered `status: 0`. `data` is kept because cPanel sometimes fills it before failing
    (cpanel-api.md §1.1, `install_ssl`), and `errors` is what cPanel said (maybe empty, as
    `Features::has_feature` does for "not enabled", cpanel-api.md §2)."""

    def __init__(
        self,
        module: str,
        function: str,
        reasons: Sequence[str],
        *,
        transport: str = "",
        data: Any = None,
        errors: Sequence[str] = (),
    ) -> None:
        super().__init__(module, function, reasons, transport=transport)
        self.data = data
        self.errors = list(errors)


def expand_args(args: Args) -> list[tuple[str, str]]:
    """Flatten arguments into (name, value) pairs. A sequence becomes cPanel's multi-value form
    `name`, `name-1`, `name-2` ... which UAPI and WHM both collect in numeric order
    (cpanel-api.md §1.1 "Multi-valued parameters", §1.5)."""
    pairs: list[tuple[str, str]] = []
    for name, value in args.items():
        if isinstance(value, str):
            pairs.append((name, value))
            continue
        for index, item in enumerate(value):
            pairs.append((name if index == 0 else f"{name}-{index}", str(item)))
    return pairs


def check_uapi_result(module: str, func: str, result: Any, *, transport: str) -> dict[str, Any]:
    """Accept a UAPI result object (`status` 1) or raise.

    `status` may be a number or a numeric string (cpanel-api.md §1.6); `errors` is null until
    something is pushed (§1.1 "JSON `null`, not `[]`").
    """
    if not isinstance(result, dict) or "status" not in result:
        raise CpanelTransportError(
            module, func, ["the answer is not a UAPI result object"], transport=transport
        )
    if as_int(result.get("status")) == 1:
        return result
    errors = as_str_list(result.get("errors"))
    reasons = errors or as_str_list(result.get("messages")) or ["status 0 without a reason"]
    raise UapiCallFailed(
        module, func, reasons, transport=transport, data=result.get("data"), errors=errors
    )


def check_whm_envelope(func: str, envelope: Any, *, transport: str) -> dict[str, Any]:
    """Accept a WHM API 1 envelope (`metadata.result` 1 or "1") or raise with `metadata.reason`
    (cpanel-api.md §1.5)."""
    metadata = as_dict(envelope.get("metadata")) if isinstance(envelope, dict) else {}
    if not metadata or "result" not in metadata:
        raise CpanelTransportError(
            "", func, ["the answer is not a WHM API 1 envelope"], transport=transport
        )
    if as_int(metadata.get("result")) == 1:
        assert isinstance(envelope, dict)
        return envelope
    reason = as_str(metadata.get("reason")) or "result 0 without a reason"
    raise CpanelAPIError("", func, [reason], transport=transport)


def decode_json(
    body: bytes,
    module: str,
    func: str,
    *,
    transport: str,
    object_hook: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """Decode a whole JSON body (see `decode_json_stream`, which this is with one chunk)."""
    return decode_json_stream(
        iter((body,)), module, func, transport=transport, object_hook=object_hook
    )


def decode_json_stream(
    chunks: Iterator[bytes],
    module: str,
    func: str,
    *,
    transport: str,
    object_hook: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """Decode a JSON body read from `chunks` as they come, turning HTML or garbage into a
    transport error that never quotes the body (it may hold a certificate or a session).

    Only the unread tail of the body is held: an envelope's outer levels (`{"data":{"vhosts":[`)
    are walked here and each value below them is decoded on its own, so a WHM listing of a big
    server (fetch_ssl_vhosts: ~35 MB of text for 20,000 vhosts) never sits in memory as bytes
    and text at once next to what it decodes to (the daemon's cycle peak, bench/). `object_hook`:
    json.loads', for callers that turn each object into something smaller as it is read; it must
    be pure, as the objects inside a value that was cut by a chunk boundary are passed to it
    again when the value is decoded anew with more text."""
    stream = _JsonStream(chunks, json.JSONDecoder(object_hook=object_hook), object_hook)
    try:
        first = stream.peek()
        if not first:
            raise CpanelTransportError(module, func, ["the answer was empty"], transport=transport)
        if first == "<":
            raise CpanelTransportError(
                module, func, ["the answer was HTML or XML, not JSON"], transport=transport
            )
        value = stream.value(_WALKED_LEVELS)
        if stream.peek():
            raise stream.invalid("Extra data")
    except json.JSONDecodeError as exc:
        raise CpanelTransportError(
            module,
            func,
            [f"the answer is not valid JSON (truncated?) at character {stream.offset + exc.pos}"],
            transport=transport,
        ) from None
    return value


# The envelope, `data`, and the listing in it: the levels walked by `_JsonStream.value`.
_WALKED_LEVELS = 3
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_NUMBER_CHARS = re.compile(r"[0-9.eE+-]*")


class _JsonStream:
    """The text of a JSON body, decoded from UTF-8 chunk by chunk; `offset` characters before
    the buffer are already consumed and dropped."""

    def __init__(
        self,
        chunks: Iterator[bytes],
        decoder: json.JSONDecoder,
        object_hook: Callable[[dict[str, Any]], Any] | None,
    ) -> None:
        self._chunks = chunks
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._decoder = decoder
        self._hook = object_hook
        self._buffer = ""
        self._pos = 0
        self._ended = False
        self.offset = 0

    def _read_more(self) -> None:
        if self._ended:
            return
        chunk = next(self._chunks, None)
        if chunk is None:
            self._ended = True
        text = self._utf8.decode(chunk or b"", final=chunk is None)
        # What was consumed goes: the buffer stays about a chunk and a value long.
        self.offset += self._pos
        self._buffer = self._buffer[self._pos :] + text
        self._pos = 0

    def invalid(self, message: str) -> json.JSONDecodeError:
        return json.JSONDecodeError(message, self._buffer, self._pos)

    def peek(self) -> str:
        """The next character that is not JSON whitespace ("" at the end of the body)."""
        while True:
            found = _JSON_SPACE.match(self._buffer, self._pos)
            self._pos = found.end() if found else self._pos
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if self._ended:
                return ""
            self._read_more()

    def _expect(self, allowed: str, message: str) -> str:
        char = self.peek()
        if not char or char not in allowed:
            raise self.invalid(message)
        self._pos += 1
        return char

    def whole(self) -> Any:
        """The next value, decoded by json's scanner once all of it is in the buffer. A value
        that does not fit yet is tried again with at least twice the text (a long one is
        rescanned a few times, not once a chunk); so is one the buffer ends right after, or in
        what may still be its number."""
        needed = 0
        while True:
            while not self._ended and len(self._buffer) - self._pos < needed:
                self._read_more()
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError:
                if self._ended:
                    raise
            else:
                # "12" or "1." at the end of the buffer may be "125" or "1.5" once more comes.
                tail = _NUMBER_CHARS.match(self._buffer, end)
                if self._ended or (tail is not None and tail.end() < len(self._buffer)):
                    self._pos = end
                    return value
            needed = 2 * (len(self._buffer) - self._pos) + 1

    def value(self, levels: int) -> Any:
        """The next value; objects and arrays are walked here for `levels` levels."""
        first = self.peek()
        if levels <= 0 or first not in ("{", "["):
            return self.whole()
        self._pos += 1
        if first == "[":
            items: list[Any] = []
            if self.peek() == "]":
                self._pos += 1
                return items
            while True:
                items.append(self.value(levels - 1))
                if self._expect(",]", "Expecting ',' delimiter") == "]":
                    return items
        members: dict[str, Any] = {}
        if self.peek() == "}":
            self._pos += 1
            return self._hook(members) if self._hook else members
        while True:
            if self.peek() != '"':
                raise self.invalid("Expecting property name enclosed in double quotes")
            name = self.whole()
            self._expect(":", "Expecting ':' delimiter")
            members[name] = self.value(levels - 1)
            if self._expect(",}", "Expecting ',' delimiter") == "}":
                return self._hook(members) if self._hook else members
