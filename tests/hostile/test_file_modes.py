"""Owner and mode of every file the plugin writes, with a permissive umask (0000) so that a mode
comes from the code, never from the environment: the user's record, lock, CSRF key and page files
0600 in 0700 folders owned by the user; root's secrets 0600, public config 0644, state 0700; and
root never leaves a file of its own in a user's home."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.state import StateDB
from letsencrypt_cpanel.store import LOCK_NAME, RECORD_NAME
from letsencrypt_cpanel.web.csrf import HMAC_KEY_FILE
from tests.fixtures.lecp import LE_CP, LeCp
from tests.fixtures.plugin_pages import PageClient
from tests.fixtures.sandbox import RunningSandbox


def lecp_umask0(lecp: LeCp, *args: str, stdin: str | None = None) -> None:
    proc = subprocess.run(
        [*LE_CP, *args],
        env=lecp.env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.umask(0),  # the point of the test
    )
    assert proc.returncode == 0, proc.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def root_owned(home: Path) -> set[Path]:
    """Root's files in `home` (cPanel's SSL storage included: cPanel keeps it the user's)."""
    return {p for p in home.rglob("*") if p.lstat().st_uid == 0}


def test_every_file_the_plugin_writes_has_its_owner_and_mode(
    lecp: LeCp, cpanel_page: RunningSandbox, account: Callable[..., tuple[str, str]]
) -> None:
    sandbox = cpanel_page
    user, domain = account("hxmode", addons=["hxmode-addon.test"])
    home = sandbox.root / "home" / user
    uid = home.stat().st_uid
    root_files_before = root_owned(home)

    lecp_umask0(lecp, "config", "set", "whm_token", stdin=sandbox.whm_token + "\n")
    lecp_umask0(lecp, "config", "set", "renewal_days", "30")
    lecp_umask0(lecp, "ssl", "issue", "--user", user, domain)
    lecp_umask0(lecp, "ssl", "renew", "--user", user, "--force")
    client = PageClient.login(sandbox, user)
    form = {"action": "issue", "vhost": "hxmode-addon.test", "name": "hxmode-addon.test"}
    assert client.post(form).status == 303
    assert client.post({"action": "settings", "send_success_mail": "1"}).status == 303

    # The user's side: everything under ~/.cpanel is the user's, folders 0700, files 0600.
    nvdata = home / ".cpanel/nvdata"
    names = {p.name for p in nvdata.iterdir()}
    assert {RECORD_NAME, LOCK_NAME, HMAC_KEY_FILE} <= names, names
    for folder in (home / ".cpanel", nvdata):
        assert folder.lstat().st_uid == uid and mode(folder) == 0o700, folder
    for path in nvdata.rglob("*"):
        if not path.name.startswith("letsencrypt-cpanel"):
            continue  # cPanel's own NVData entries
        st = path.lstat()
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1, path
        assert st.st_uid == uid and st.st_gid == home.stat().st_gid, path
        assert mode(path) == 0o600, (path, oct(mode(path)))
    # Challenge folders the solver made are the user's and world-readable (the web server
    # serves them); no token file is left behind.
    for wk in home.rglob(".well-known"):
        for path in [wk, *wk.rglob("*")]:
            assert path.lstat().st_uid == uid, path
            assert path.is_dir() and mode(path) == 0o755, (path, oct(mode(path)))
    # Root wrote nothing in the home.
    assert root_owned(home) == root_files_before

    # Root's side.
    settings = load_settings({"LECP_ROOT": str(sandbox.root)})
    expected = {settings.config_file: 0o644, settings.secrets_file: 0o600}
    for path, wanted in expected.items():
        st = path.lstat()
        assert stat.S_ISREG(st.st_mode) and st.st_uid == 0, path
        assert mode(path) == wanted, (path, oct(mode(path)))
    assert sandbox.whm_token not in settings.config_file.read_text()
    umask = os.umask(0)  # the daemon's state, opened as the daemon and the WHM page open it
    try:
        StateDB.open(settings).close()
    finally:
        os.umask(umask)
    state = settings.state_dir
    assert state.lstat().st_uid == 0 and mode(state) == 0o700, oct(mode(state))
    for path in state.rglob("*"):
        assert path.lstat().st_uid == 0 and not mode(path) & 0o077, (path, oct(mode(path)))
