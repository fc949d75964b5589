"""The status line of every answer: the common statuses come from a small table (no `http`
import in each CGI process), and must read exactly as Python's own HTTPStatus phrases."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from letsencrypt_cpanel.web.responses import _REASONS, Response


def _status_line(status: int) -> str:
    seen: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]]) -> Any:
        seen.append(line)

    Response(status, b"").wsgi(start_response)
    return seen[0]


@pytest.mark.parametrize("status", [*_REASONS, 418, 422, 429])
def test_the_status_line_has_python_s_phrase(status: int) -> None:
    assert _status_line(status) == f"{status} {HTTPStatus(status).phrase}"


def test_the_table_covers_the_pages_everyday_answers() -> None:
    # The point of the table: Home, its redirects and its usual refusals never import `http`.
    assert {200, 303, 400, 403, 404, 409, 500, 502} <= set(_REASONS)
