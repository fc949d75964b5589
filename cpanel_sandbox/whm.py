"""WHM API 1 functions over the sandbox's cPanel files (cpanel-api.md §1.5, §3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def dispatch(
    root: Path, authuser: str, func: str, args: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The WHM API 1 envelope (metadata + data when there is data)."""
    raise NotImplementedError


def check_token(root: Path, user: str, token: str) -> bool:
    raise NotImplementedError
