"""The cPanel page through the sandbox's page host, as cpsrvd runs it, pointed at Pebble."""

from __future__ import annotations

import pytest

from tests.fixtures.lecp import LeCp, configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.plugin_pages import enable_plugin_feature, install_cpanel_page
from tests.fixtures.sandbox import RunningSandbox


@pytest.fixture(scope="session")
def configured(sandbox: RunningSandbox, pebble: PebbleInstance) -> LeCp:
    return configure(sandbox, pebble)


@pytest.fixture
def cpanel_page(sandbox: RunningSandbox, configured: LeCp) -> RunningSandbox:
    """The sandbox with the plugin's page installed (again: other tests put probes at the same
    path) and the plugin's feature in the default feature list."""
    install_cpanel_page(sandbox)
    enable_plugin_feature(sandbox)
    return sandbox
