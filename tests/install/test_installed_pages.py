"""The pages as installed by install.sh (symlinked plugin folders, the venv's Python, the code
and templates under /opt/letsencrypt-cpanel/lib) answer through the sandbox's cpsrvd page host:
the cPanel page as the logged-in user, the WHM page as root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.fixtures.plugin_pages import PageClient, enable_plugin_feature
from tests.fixtures.sandbox import RunningSandbox
from tests.install.conftest import Server
from tests.whm.pages import WhmClient


def test_installed_cpanel_page_lists_the_users_sites(
    fresh_sandbox: Callable[..., RunningSandbox], source_tree: Path
) -> None:
    sandbox = fresh_sandbox()
    server = Server(sandbox.root, source_tree)
    server.use_systemd()
    server.install()
    sandbox.add_user("pageuser", "installed-page.test", subs=["blog.installed-page.test"])
    # On cPanel, install_plugin's Feature Manager entry is on unless a list turns it off; the
    # sandbox's install_plugin stand-in records the call but registers no feature.
    enable_plugin_feature(sandbox)

    rows = PageClient.login(sandbox, "pageuser").rows()
    assert "installed-page.test" in rows
    html = PageClient.login(sandbox, "pageuser").html()
    assert "installed-page.test" in html


def test_installed_whm_page_answers_root(
    fresh_sandbox: Callable[..., RunningSandbox], source_tree: Path
) -> None:
    sandbox = fresh_sandbox()
    server = Server(sandbox.root, source_tree)
    server.use_systemd()
    server.install()
    sandbox.add_user("whmseen", "whm-seen.test")

    reply = WhmClient.login(sandbox).get()
    assert reply.status == 200, reply.body[:500]
    assert b"whm-seen.test" in reply.body
