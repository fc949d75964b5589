"""A full disk while the record is written: the user's nvdata folder becomes a 64 KiB tmpfs,
filled to the last byte, and the certificate is issued again. The save fails; the old record is
intact byte for byte, no temp file is left behind, the failure is one clear line, and once there
is room again the next issue works."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.lecp import LeCp
from tests.fixtures.sandbox import RunningSandbox


@pytest.fixture
def tiny_nvdata(
    lecp: LeCp, sandbox: RunningSandbox, account: Callable[..., tuple[str, str]]
) -> Iterator[tuple[str, str, Path]]:
    """(user, domain, nvdata) with a certificate issued, nvdata on a full 64 KiB tmpfs."""
    user, domain = account("hxdisk")
    lecp.ok("ssl", "issue", "--user", user, domain)
    home = sandbox.root / "home" / user
    nvdata = home / ".cpanel/nvdata"
    st = home.stat()
    saved = nvdata.parent / "nvdata.before-tmpfs"
    shutil.copytree(nvdata, saved, symlinks=True)
    options = f"size=64k,mode=0700,uid={st.st_uid},gid={st.st_gid}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(nvdata)], check=True)
    try:
        for item in saved.iterdir():
            shutil.copy2(item, nvdata / item.name)
            os.chown(nvdata / item.name, st.st_uid, st.st_gid)
        filler = nvdata / "zz-filler"
        with open(filler, "wb", buffering=0) as fh:
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 1024)
        with pytest.raises(OSError) as full:
            (nvdata / "probe").write_bytes(b"x" * 4096)
        assert full.value.errno == errno.ENOSPC
        (nvdata / "probe").unlink(missing_ok=True)
        yield user, domain, nvdata
    finally:
        subprocess.run(["umount", "-l", str(nvdata)], check=False)
        shutil.rmtree(saved, ignore_errors=True)


def test_a_full_disk_leaves_the_old_record_intact(
    lecp: LeCp, tiny_nvdata: tuple[str, str, Path]
) -> None:
    user, domain, nvdata = tiny_nvdata
    record = nvdata / "letsencrypt-cpanel"
    before = record.read_bytes()
    names_before = sorted(p.name for p in nvdata.iterdir())

    proc = lecp.run("ssl", "issue", "--user", user, domain)
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "no space left" in proc.stderr.lower(), proc.stderr  # the save, not anything earlier
    assert record.read_bytes() == before
    json.loads(before)  # and it is the whole record
    assert sorted(p.name for p in nvdata.iterdir()) == names_before, "no temp file left"

    (nvdata / "zz-filler").unlink()
    lecp.ok("ssl", "issue", "--user", user, domain)
    after = json.loads(record.read_bytes())
    assert (
        after["certificates"][domain]["cert_pem"]
        != json.loads(before)["certificates"][domain]["cert_pem"]
    )
