"""Accounts in cPanel's own file formats (cpanel-api.md §4)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: Path
    shell: str


@dataclass(frozen=True)
class SiteVhost:
    servername: str
    names: tuple[str, ...]
    docroot: Path
    user: str


def init_root(root: Path) -> str:
    raise NotImplementedError


def add_user(
    root: Path,
    user: str,
    domain: str,
    *,
    addons: Iterable[str] = (),
    subs: Iterable[str] = (),
    parked: Iterable[str] = (),
    email: str | None = None,
    owner: str = "root",
    plan: str = "default",
) -> None:
    raise NotImplementedError


def list_users(root: Path) -> list[str]:
    raise NotImplementedError


def passwd_entry(root: Path, user: str) -> PasswdEntry | None:
    raise NotImplementedError


def site_vhosts(root: Path) -> list[SiteVhost]:
    raise NotImplementedError


def hostname(root: Path) -> str:
    raise NotImplementedError
