"""Shared fixtures of the hostile suite: the plugin configured against the session sandbox and
Pebble, fresh accounts, the cPanel page installed, and counters over Pebble's request log (what
proves the CA was, or was not, asked)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from tests.daemon.conftest import bed  # noqa: F401 - a test bed of its own (daemon, SMTP)
from tests.fixtures.lecp import LeCp, configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.plugin_pages import enable_plugin_feature, install_cpanel_page
from tests.fixtures.sandbox import RunningSandbox

_accounts = itertools.count(1)


def pebble_posts(pebble: PebbleInstance, path: str) -> int:
    """How many POSTs to `path` (e.g. "/order-plz", "/finalize-order/") Pebble has logged."""
    return (pebble.workdir / "pebble.log").read_text(errors="replace").count(f"POST {path}")


@pytest.fixture(scope="session")
def lecp(sandbox: RunningSandbox, pebble: PebbleInstance) -> LeCp:
    return configure(sandbox, pebble)


@pytest.fixture
def account(sandbox: RunningSandbox, lecp: LeCp) -> Callable[..., tuple[str, str]]:
    """A factory of fresh accounts on the session sandbox: (user, main domain), unique names."""

    def make(prefix: str = "hx", **kwargs: object) -> tuple[str, str]:
        n = next(_accounts)
        user, domain = f"{prefix}{n}u", f"{prefix}{n}.test"
        sandbox.add_user(user, domain, **kwargs)  # type: ignore[arg-type]
        return user, domain

    return make


@pytest.fixture
def cpanel_page(sandbox: RunningSandbox, lecp: LeCp) -> Iterator[RunningSandbox]:
    """The plugin's page installed (again: other tests place probes at the same path) with its
    feature on in the default feature list; no fault switch left on afterwards."""
    install_cpanel_page(sandbox)
    enable_plugin_feature(sandbox)
    yield sandbox
    sandbox.clear_faults()
