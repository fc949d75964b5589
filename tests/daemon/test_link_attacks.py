"""Root never opens a path inside a user's home, so links planted there get nothing.

For real, as root, with sandbox uids: users replace their record, its lock, their docroot or
`.well-known` with a symbolic link to a root-only file or folder, or with a hard link to a
root-only file (a kernel without protected_hardlinks lets users make those). The daemon's cycle
must neither reveal the file's contents anywhere (mail, log, state) nor change it, and must go on
renewing everyone else."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from letsencrypt_cpanel.config import load_settings
from tests.daemon.conftest import Bed

ATTACKS = ["recsym", "rechard", "locksym", "lockhard", "docsym", "wksym", "wkfile"]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(folder.iterdir())
    }


def _replace_with_symlink(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


def test_planted_links_get_nothing_and_others_still_renew(bed: Bed) -> None:
    sb = bed.sandbox
    vault = bed.root / "root-only"
    vault.mkdir(mode=0o700)
    secret_text = f"TOPSECRET-{secrets.token_hex(8)}\n"
    secret = vault / "secret"
    secret.write_text(secret_text)
    secret.chmod(0o600)

    sb.add_user("honest", "honest.test", email="honest@mail.test")
    bed.issue("honest", "honest.test")
    for user in ATTACKS:
        sb.add_user(user, f"{user}.test", email=f"{user}@mail.test")
        bed.issue(user, f"{user}.test")
        bed.forget_acme_account(user)  # so that every renewal meets a challenge

    def nvdata(user: str) -> Path:
        return bed.home(user) / ".cpanel/nvdata"

    def owned_link(path: Path, target: Path) -> None:
        _replace_with_symlink(path, target)
        uid = bed.home(path.relative_to(bed.root / "home").parts[0]).stat().st_uid
        os.lchown(path, uid, uid)

    owned_link(nvdata("recsym") / "letsencrypt-cpanel", secret)
    (nvdata("rechard") / "letsencrypt-cpanel").unlink()
    os.link(secret, nvdata("rechard") / "letsencrypt-cpanel")
    owned_link(nvdata("locksym") / "letsencrypt-cpanel.lock", secret)
    (nvdata("lockhard") / "letsencrypt-cpanel.lock").unlink(missing_ok=True)
    os.link(secret, nvdata("lockhard") / "letsencrypt-cpanel.lock")
    owned_link(bed.home("docsym") / "public_html", vault)
    owned_link(bed.home("wksym") / "public_html" / ".well-known", vault)
    owned_link(bed.home("wkfile") / "public_html" / ".well-known", secret)
    before = _snapshot(vault)
    vault_mtime = vault.stat().st_mtime_ns

    bed.set("renewal_days", "30")
    out = bed.once()

    assert _snapshot(vault) == before
    assert vault.stat().st_mtime_ns == vault_mtime
    assert secret.read_text() == secret_text and secret.stat().st_uid == 0
    token = secret_text.strip()
    assert token not in out
    for _, message in bed.mailbox.messages:
        assert token not in message.as_string()
    state_dir = load_settings({"LECP_ROOT": str(bed.root)}).state_dir
    for path in state_dir.iterdir():
        assert token.encode() not in path.read_bytes(), path
    for user in ATTACKS:
        for path in bed.home(user).rglob("*"):
            if (
                path.is_file()
                and not path.is_symlink()
                and path.stat().st_ino != secret.stat().st_ino
            ):
                assert token.encode() not in path.read_bytes(), path

    # The honest user was renewed in the same cycle; every attacker got a failure, no renewal.
    assert "1 renewed" in out, out
    with bed.state() as db:
        renewed = {r.user for r in db.vhosts() if r.status == "renewed"}
        assert renewed == {"honest"}
        users = db.users()
        for user in ATTACKS:
            failed_vhost = db.vhost(user, f"{user}.test")
            assert users[user].failures or (failed_vhost and failed_vhost.status == "failed"), user
