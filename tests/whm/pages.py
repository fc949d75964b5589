"""The WHM page installed in a sandbox the way the installer places it, and a client that talks
to it through cpsrvd's page host (WHM port, `whostmgrsession` cookie) as a WHM user.

The launcher is the repository's `cgi/whm/letsencrypt.live.cgi` with the two changes only an
install makes: this test run's Python on the first line, and the repository on `sys.path`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cpanel_sandbox import layout
from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.state import StateDB, VhostState
from tests.fixtures.plugin_pages import PageClient
from tests.fixtures.sandbox import RunningSandbox

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "cgi" / "whm" / "letsencrypt.live.cgi"
WHM_PAGE = "letsencrypt-cpanel/letsencrypt.live.cgi"
PAGE_PATH = "/cgi/" + WHM_PAGE


def launcher_text() -> str:
    lines = LAUNCHER.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#!"), "the launcher starts with an interpreter line"
    head = f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
    return head + "\n".join(lines[1:]) + "\n"


def install_whm_page(sandbox: RunningSandbox) -> Path:
    return sandbox.install_cgi("whm", WHM_PAGE, launcher_text())


def add_reseller(sandbox: RunningSandbox, user: str, acls: Sequence[str]) -> None:
    """A line `user:acl,acl` in var/cpanel/resellers (replacing an earlier one for `user`)."""
    path = layout.resellers_file(sandbox.root)
    lines = [ln for ln in layout.read_text(path).splitlines() if not ln.startswith(f"{user}:")]
    lines.append(f"{user}:{','.join(acls)}")
    layout.write_file(path, "\n".join(lines) + "\n", mode=0o644)


def set_owner(sandbox: RunningSandbox, user: str, owner: str) -> None:
    path = layout.cpuser_file(sandbox.root, user)
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^OWNER=.*$", f"OWNER={owner}", text), encoding="utf-8")


def put_state(sandbox: RunningSandbox, *rows: VhostState) -> None:
    """Rows in root's state as a daemon cycle leaves them (what the page reads)."""
    settings = load_settings({"LECP_ROOT": str(sandbox.root)})
    with StateDB.open(settings) as db, db.transaction():
        for row in rows:
            db.put_vhost(row, row.last_attempt)


class WhmClient(PageClient):
    """One logged-in WHM session talking to the WHM page (the cPanel page's client, at the WHM
    page's URL)."""

    @classmethod
    def login(cls, sandbox: RunningSandbox, user: str = "root") -> WhmClient:
        return cls(sandbox, sandbox.login(user, "whostmgrd"))

    @property
    def url(self) -> str:
        return self.session.token + PAGE_PATH

    def data(self, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        reply = self.get(query, json_api=True)
        assert reply.status == 200, reply.body[:500]
        body = reply.json()
        assert body["success"] is True and body["errors"] == []
        return dict(body["data"])
