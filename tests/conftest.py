"""Shared fixtures. Each fixture module under tests/fixtures/ owns one real component."""

from __future__ import annotations

import socket

import pytest

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.pebble",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (tests never bind fixed ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def site_http_port() -> int:
    """The port the sandbox serves users' sites on over HTTP, and Pebble validates http-01 on."""
    return free_port()
