"""Symbolic-link, hard-link, FIFO and rename races on every path in a user's home that the
workers (`le-cp`, as root -> a worker as the user) and the cPanel page's CGI touch: the record,
its lock, the docroot, `.well-known` and `.well-known/acme-challenge`.

A racer thread swaps those paths, thousands of times a second, for links to a root-only file,
a root-only folder, or a folder outside the home, and puts them back, while the user issues
through both doors. Hard links to root's files are made by root for the user (a kernel without
`protected_hardlinks` lets users make them). Whatever each issue's outcome, afterwards: root's
file and folder are untouched (bytes, mode, owner, mtime), nothing new exists outside the home
(no file of the user's uid anywhere else under the sandbox root), root's secret is in no output;
and once the racer stops, the next issue works."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from letsencrypt_cpanel.web.csrf import HMAC_KEY_FILE
from letsencrypt_cpanel.web.one_time_message import MESSAGE_FILE
from letsencrypt_cpanel.web.progress import BUSY_LOCK, PROGRESS_FILE
from tests.fixtures.lecp import LeCp
from tests.fixtures.plugin_pages import PageClient
from tests.fixtures.sandbox import RunningSandbox

ROUNDS = 2
PAGE_FILES = [BUSY_LOCK, PROGRESS_FILE, MESSAGE_FILE, HMAC_KEY_FILE]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int, int]]:
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        out[str(path)] = (data, st.st_mode, st.st_uid, st.st_mtime_ns)
    return out


def files_of_uid(root: Path, uid: int, home: Path) -> set[Path]:
    """Every path under `root` owned by `uid`, the home excluded."""
    found = set()
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here == home:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = here / name
            with contextlib.suppress(FileNotFoundError):
                if path.lstat().st_uid == uid:
                    found.add(path)
    return found


class Racer:
    """Swaps the user's paths for planted links and back until stopped."""

    def __init__(self, home: Path, docroot: Path, secret: Path, vault: Path, outside: Path):
        st = home.stat()
        self.uid, self.gid = st.st_uid, st.st_gid
        nvdata = home / ".cpanel/nvdata"
        wk = docroot / ".well-known"
        self.plans: list[tuple[Path, Path, str]] = [
            (nvdata / "letsencrypt-cpanel", secret, "symlink"),
            (nvdata / "letsencrypt-cpanel", secret, "hardlink"),
            (nvdata / "letsencrypt-cpanel", secret, "fifo"),
            (nvdata / "letsencrypt-cpanel.lock", secret, "symlink"),
            (nvdata / "letsencrypt-cpanel.lock", secret, "hardlink"),
            (nvdata, vault, "symlink"),
            # The page's own files: busy lock, progress, one-time message, CSRF key.
            *(
                (nvdata / name, secret, how)
                for name in PAGE_FILES
                for how in ("symlink", "hardlink")
            ),
            (wk, outside, "symlink"),
            (wk, vault, "symlink"),
            (wk / "acme-challenge", outside, "symlink"),
            (wk / "acme-challenge", secret, "symlink"),
            (docroot, outside, "symlink"),
        ]
        self.swaps = 0
        self.stop = threading.Event()
        self.rng = random.Random(1)  # a fixed seed: the same swaps each run

    def _plant(self, path: Path, target: Path, how: str) -> None:
        if how == "symlink":
            path.symlink_to(target)
            os.lchown(path, self.uid, self.gid)
        elif how == "hardlink":
            os.link(target, path)
        else:
            os.mkfifo(path, 0o600)
            os.chown(path, self.uid, self.gid)

    def swap_once(self) -> None:
        path, target, how = self.rng.choice(self.plans)
        aside = path.with_name(path.name + ".racer")
        moved = False
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, aside)
            moved = True
        try:
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                self._plant(path, target, how)
            time.sleep(self.rng.choice([0, 0.0005, 0.002]))
        finally:
            if path.is_symlink() or path.is_file() or path.is_fifo():
                path.unlink()
            elif path.is_dir() and moved:
                shutil.rmtree(path)  # the victim made a fresh one while it was away
            if moved:
                os.rename(aside, path)
        self.swaps += 1

    def run(self) -> None:
        while not self.stop.is_set():
            self.swap_once()


def test_link_races_in_the_home_get_nothing_of_roots(
    lecp: LeCp, cpanel_page: RunningSandbox, account: Callable[..., tuple[str, str]]
) -> None:
    sandbox = cpanel_page
    user, domain = account("hxrace", parked=["hxrace-parked.test"])
    home = sandbox.root / "home" / user
    docroot = home / "public_html"
    lecp.ok("ssl", "issue", "--user", user, domain)  # the record, lock and folders exist
    (docroot / ".well-known/acme-challenge").mkdir(parents=True, exist_ok=True)
    for path in (docroot / ".well-known", docroot / ".well-known/acme-challenge"):
        os.chown(path, home.stat().st_uid, home.stat().st_gid)

    vault = sandbox.root / "hxrace-vault"
    vault.mkdir(mode=0o700)
    secret = vault / "secret"
    secret_text = f"ROOT-ONLY-{secrets.token_hex(12)}"
    secret.write_text(secret_text)
    secret.chmod(0o600)
    outside = sandbox.root / "hxrace-outside"  # root's, readable by all, writable by root only
    outside.mkdir(mode=0o755)
    uid = home.stat().st_uid
    before_vault, before_uid_files = snapshot(vault), files_of_uid(sandbox.root, uid, home)

    racer = Racer(home, docroot, secret, vault, outside)
    thread = threading.Thread(target=racer.run, daemon=True)
    outputs: list[str] = []
    statuses: list[tuple[str, int, bytes]] = []
    client = PageClient.login(sandbox, user)
    thread.start()
    try:
        for _ in range(ROUNDS):
            proc = lecp.run("ssl", "issue", "--user", user, domain, "hxrace-parked.test")
            assert "Traceback" not in proc.stderr, proc.stderr
            outputs += [proc.stdout, proc.stderr]
            for fields in (
                {"action": "issue", "vhost": domain, "name": [domain, "hxrace-parked.test"]},
                {"action": "settings", "send_success_mail": "1"},
            ):
                # The CSRF token comes from a GET, which a swap may refuse (a 4xx): then there is
                # no POST this round. Every answer, the GET's too, is judged after the loop.
                reply = client.get(json_api=True)
                statuses.append(("token", reply.status, reply.body[:300]))
                if reply.status != 200:
                    continue
                token = str(reply.json()["data"]["csrf_token"])
                reply = client.post(fields, json_api=True, csrf=token)
                statuses.append((fields["action"], reply.status, reply.body[:300]))
                outputs.append(reply.body.decode())
            outputs.append(client.get(json_api=True).body.decode())
    finally:
        racer.stop.set()
        thread.join(timeout=10)
    assert racer.swaps > 100, racer.swaps
    assert any(action != "token" for action, _, _ in statuses), "no page POST during the race"

    assert snapshot(vault) == before_vault
    assert secret.read_text() == secret_text and secret.stat().st_uid == 0
    assert list(outside.iterdir()) == []
    assert files_of_uid(sandbox.root, uid, home) == before_uid_files
    for text in outputs:
        assert secret_text not in text
    record = home / ".cpanel/nvdata/letsencrypt-cpanel"
    if record.exists():
        assert secret_text not in record.read_text(errors="replace")

    # Put right by the racer's last swap back, the home works again.
    lecp.ok("ssl", "issue", "--user", user, domain, "hxrace-parked.test")
    assert client.post({"action": "settings", "send_success_mail": "1"}).status == 303

    # Judged last, so that everything above still holds while this is open: no answer of the
    # page during the race was a server error. An issue the race made fail at validation is the
    # page's 502 with the reason (its answer when the CA was asked and said no), not a bug.
    server_errors = [
        s
        for s in statuses
        if s[1] >= 500
        and not (s[0] == "issue" and s[1] == 502 and b"could not be validated" in s[2])
    ]
    error_log = sandbox.root / "usr/local/cpanel/logs/error_log"
    logged = error_log.read_text(errors="replace")[-6000:] if error_log.exists() else ""
    assert server_errors == [], (server_errors, logged)


def test_a_docroot_linked_out_of_the_home_gets_no_challenge_folder_there(
    lecp: LeCp, sandbox: RunningSandbox, account: Callable[..., tuple[str, str]]
) -> None:
    """Like /tmp: a folder outside the home that the user may write to. The plugin must not
    follow the user's docroot link there (the promise: no file outside the home created), not
    even for the time of a challenge."""
    user, domain = account("hxdocl")
    home = sandbox.root / "home" / user
    shared = sandbox.root / "hxdocl-shared"
    shared.mkdir()
    shared.chmod(0o1777)
    docroot = home / "public_html"
    shutil.rmtree(docroot)
    docroot.symlink_to(shared)
    os.lchown(docroot, home.stat().st_uid, home.stat().st_gid)
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.extend(p.name for p in shared.iterdir())
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        proc = lecp.run("ssl", "issue", "--user", user, domain)
    finally:
        done.set()
        watcher.join(timeout=5)
    assert not seen, (sorted(set(seen)), proc.stderr)
