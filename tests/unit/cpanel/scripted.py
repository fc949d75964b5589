"""An in-memory transport that answers from a script of JSON documents (no server, no socket).

Each answer runs through the same envelope check the real transports use, so these tests see
exactly what `UserAPI`/`WhmAPI` see in production.
"""

from __future__ import annotations

from typing import Any

from letsencrypt_cpanel.cpanel.envelope import (
    Args,
    check_uapi_result,
    check_whm_envelope,
    expand_args,
)


class ScriptedTransport:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def call_uapi(self, module: str, func: str, args: Args) -> dict[str, Any]:
        self.calls.append((f"{module}::{func}", expand_args(args)))
        return check_uapi_result(module, func, self.answers[f"{module}::{func}"], transport="t")

    def call_whm(self, func: str, args: Args) -> dict[str, Any]:
        self.calls.append((func, expand_args(args)))
        return check_whm_envelope(func, self.answers[func], transport="t")
