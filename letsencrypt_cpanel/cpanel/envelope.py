"""The transport contract, and the envelope checks every transport runs once per call.

A UAPI transport returns the bare UAPI result object after `check_uapi_result` accepted it; a WHM
transport returns the WHM API 1 envelope after `check_whm_envelope` accepted it. The API objects
(`UserAPI`, `WhmAPI`) therefore never look at `status` or `metadata.result` again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
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
    """Decode a JSON body, turning HTML or garbage into a transport error that never quotes the
    body (it may hold a certificate or a session). `object_hook`: json.loads', for callers that
    turn each object into something smaller as it is read (WHM listings of a whole server)."""
    text = body.decode("utf-8", errors="replace").lstrip()
    if not text:
        raise CpanelTransportError(module, func, ["the answer was empty"], transport=transport)
    if text.startswith("<"):
        raise CpanelTransportError(
            module, func, ["the answer was HTML or XML, not JSON"], transport=transport
        )
    try:
        return json.loads(text, object_hook=object_hook)
    except json.JSONDecodeError as exc:
        raise CpanelTransportError(
            module,
            func,
            [f"the answer is not valid JSON (truncated?) at byte {exc.pos}"],
            transport=transport,
        ) from None
