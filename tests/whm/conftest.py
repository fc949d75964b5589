"""The WHM page through the sandbox's page host, as cpsrvd runs it (as root, REMOTE_USER = the
WHM user), with the plugin configured for the session's Pebble."""

from __future__ import annotations

import pytest

from tests.fixtures.lecp import LeCp, configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import RunningSandbox
from tests.whm.pages import install_whm_page


@pytest.fixture(scope="session")
def whm_configured(sandbox: RunningSandbox, pebble: PebbleInstance) -> LeCp:
    return configure(sandbox, pebble)


@pytest.fixture
def whm_page(sandbox: RunningSandbox, whm_configured: LeCp) -> RunningSandbox:
    install_whm_page(sandbox)
    return sandbox
