"""The file edits install.sh leaves to Python: exact, sorted where cPanel sorts, idempotent."""

from __future__ import annotations

from pathlib import Path

from letsencrypt_cpanel.install_support import (
    add_cagefs_mount,
    disable_chkservd,
    enable_chkservd,
    remove_cagefs_mount,
)


def test_chkservd_line_added_sorted_once_and_an_admins_zero_kept(tmp_path: Path) -> None:
    conf = tmp_path / "chkservd.conf"
    conf.write_text("exim:1\ncpsrvd:1")  # no trailing newline, unsorted
    assert enable_chkservd(conf, "letsencrypt-cpanel")
    assert conf.read_text() == "cpsrvd:1\nexim:1\nletsencrypt-cpanel:1\n"
    assert not enable_chkservd(conf, "letsencrypt-cpanel")

    conf.write_text("cpsrvd:1\nletsencrypt-cpanel:0\n")
    assert not enable_chkservd(conf, "letsencrypt-cpanel")
    assert conf.read_text() == "cpsrvd:1\nletsencrypt-cpanel:0\n"

    assert disable_chkservd(conf, ["letsencrypt-cpanel", "letsencrypt"])
    assert conf.read_text() == "cpsrvd:1\n"
    assert not disable_chkservd(conf, ["letsencrypt-cpanel"])


def test_chkservd_conf_created_when_missing(tmp_path: Path) -> None:
    conf = tmp_path / "chkserv.d/chkservd.conf"
    assert enable_chkservd(conf, "letsencrypt-cpanel")
    assert conf.read_text() == "letsencrypt-cpanel:1\n"
    assert conf.stat().st_mode & 0o777 == 0o644


def test_cagefs_mount_added_unless_a_parent_is_mounted(tmp_path: Path) -> None:
    mp = tmp_path / "cagefs.mp"
    mp.write_text("/var/lib/mysql\n@/var/spool/cron,700\n")
    assert add_cagefs_mount(mp, "/opt/letsencrypt-cpanel")
    assert not add_cagefs_mount(mp, "/opt/letsencrypt-cpanel/")
    assert mp.read_text().endswith("\n/opt/letsencrypt-cpanel\n")
    assert remove_cagefs_mount(mp, "/opt/letsencrypt-cpanel")
    assert mp.read_text() == "/var/lib/mysql\n@/var/spool/cron,700\n"

    mp.write_text("/opt\n")  # the whole /opt is already in every cage
    assert not add_cagefs_mount(mp, "/opt/letsencrypt-cpanel")
    assert not remove_cagefs_mount(mp, "/opt/letsencrypt-cpanel")
    assert mp.read_text() == "/opt\n"
