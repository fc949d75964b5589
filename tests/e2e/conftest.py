"""The product's own path, end to end: `le-cp` as root -> WHM user session -> a worker as the
user -> the same issuance code the cPanel page runs -> Pebble -> the sandbox installs it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.lecp import LeCp, configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import RunningSandbox


@pytest.fixture(scope="session")
def lecp(sandbox: RunningSandbox, pebble: PebbleInstance) -> LeCp:
    return configure(sandbox, pebble)


_users = itertools.count(1)


@pytest.fixture
def new_user(sandbox: RunningSandbox) -> Callable[..., str]:
    """Add a fresh sandbox account; returns its user name. Domains are unique per test."""

    def make(domain: str | None = None, **kwargs: object) -> str:
        n = next(_users)
        user = f"e2e{n}"
        sandbox.add_user(user, domain or f"site{n}.test", **kwargs)  # type: ignore[arg-type]
        return user

    return make


@pytest.fixture
def sandbox_root(sandbox: RunningSandbox) -> Iterator[Path]:
    yield sandbox.root
