"""UAPI functions over the sandbox's cPanel files (cpanel-api.md §1.1, §2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def dispatch(
    root: Path, user: str, module: str, func: str, args: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The bare UAPI result object, exactly as cPanel's HTTP body (§1.1)."""
    raise NotImplementedError
