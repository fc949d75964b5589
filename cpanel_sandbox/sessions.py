"""cpsrvd sessions (WHM create_user_session and its login URL), stored as files so the CLI and the
server share them (cpanel-api.md §3 create_user_session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Session:
    user: str
    service: str
    token: str  # "/cpsessNNNNNNNNNN"
    cookie: str  # the `cpsession` cookie value
    expires: int


def create(root: Path, user: str, service: str) -> dict[str, Any]:
    raise NotImplementedError


def redeem_login(root: Path, session_param: str) -> Session | None:
    raise NotImplementedError


def check(root: Path, cp_security_token: str, cookie: str | None) -> Session | None:
    raise NotImplementedError


def destroy(root: Path, cp_security_token: str) -> None:
    raise NotImplementedError
