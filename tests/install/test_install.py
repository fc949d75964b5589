"""install.sh and uninstall.sh on a sandbox cPanel server: the exact commands they run, the files
they leave, idempotence, upgrade in place, and CageFS."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

from cpanel_sandbox import whm
from tests.install.conftest import OPT, Server, copy_source

PLUGIN = [
    f"install_plugin {OPT}/cpanel --theme jupiter",
    f"register_appconfig {OPT}/letsencrypt-cpanel-whm.conf",
    f"manage_hooks add script {OPT}/bin/letsencrypt-cpanel-hook",
    "restartsrv_chkservd",
]
JUPITER = "/usr/local/cpanel/base/frontend/jupiter/letsencrypt-cpanel"
WHM_CGI = "/usr/local/cpanel/whostmgr/docroot/cgi/letsencrypt-cpanel"


def assert_launcher(server: Server, absolute: str) -> None:
    path = server.path(absolute)
    st = path.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755), absolute
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"#!{server.root}{OPT}/venv/bin/python", absolute


def test_install_on_sysvinit_then_again_changes_nothing(server: Server) -> None:
    server.use_sysvinit()
    assert server.install() == [
        *PLUGIN,
        "chkconfig --add letsencrypt-cpanel",
        "service letsencrypt-cpanel start",
    ]

    for launcher in [
        f"{OPT}/cpanel/letsencrypt.live.cgi",
        f"{OPT}/whm/letsencrypt.live.cgi",
        f"{OPT}/bin/letsencrypt-cpaneld",
        f"{OPT}/bin/letsencrypt-cpanel-hook",
        "/usr/local/bin/le-cp",
    ]:
        assert_launcher(server, launcher)
    # The CGIs are reachable where cpsrvd looks for them.
    assert server.path(JUPITER).resolve() == server.path(f"{OPT}/cpanel")
    assert (server.path(JUPITER) / "letsencrypt.live.cgi").is_file()
    assert (server.path(WHM_CGI) / "letsencrypt.live.cgi").is_file()
    apps = server.path("/var/cpanel/apps/letsencrypt-cpanel-whm.conf").read_text()
    assert "url=/cgi/letsencrypt-cpanel/letsencrypt.live.cgi" in apps
    assert server.path(
        "/usr/local/cpanel/whostmgr/docroot/addon_plugins/letsencrypt-cpanel-whm.png"
    ).is_file()
    # chkservd: the driver, and the enable line (the file stays sorted, newline-terminated).
    assert server.path("/etc/chkserv.d/letsencrypt-cpanel").read_text() == (
        "service[letsencrypt-cpanel]=x,x,x,/sbin/service letsencrypt-cpanel restart,"
        "letsencrypt-cpaneld,root\n"
    )
    assert server.path("/etc/chkserv.d/chkservd.conf").read_text() == "letsencrypt-cpanel:1\n"
    init = server.path("/etc/init.d/letsencrypt-cpanel").read_text()
    assert f"DAEMON={server.root}{OPT}/bin/letsencrypt-cpaneld" in init
    assert server.path("/etc/logrotate.d/letsencrypt-cpanel").is_file()
    # One WHM API token, made by the installer, its value only in the 0600 secrets file.
    secrets = server.path("/etc/letsencrypt-cpanel.secrets")
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert whm.check_token(server.root, "root", json.loads(secrets.read_text())["whm_token"])
    assert server.tokens().count("letsencrypt-cpanel") == 1
    assert stat.S_IMODE(server.path("/etc/letsencrypt-cpanel.conf").stat().st_mode) == 0o644
    # The venv's Python runs the installed code, not the source tree's.
    venv_python = server.path(f"{OPT}/venv/bin/python")
    assert venv_python.exists()

    before = server.snapshot()
    assert server.install() == ["service letsencrypt-cpanel start"]  # "make sure it runs"
    assert server.snapshot() == before


def test_install_on_systemd(server: Server) -> None:
    server.use_systemd()
    assert server.install() == [
        *PLUGIN,
        "systemctl daemon-reload",
        "systemctl enable --now letsencrypt-cpanel.service",
    ]
    unit = server.path("/etc/systemd/system/letsencrypt-cpanel.service").read_text()
    assert f"ExecStart={server.root}{OPT}/bin/letsencrypt-cpaneld --foreground" in unit
    assert f"Environment=LECP_ROOT={server.root}" in unit
    assert not server.path("/etc/init.d/letsencrypt-cpanel").exists()
    # The installed le-cp runs from the venv and the installed code, not the source tree.
    env = {"LECP_ROOT": str(server.root), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [str(server.path("/usr/local/bin/le-cp")), "config", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "acme_directory" in json.loads(proc.stdout), proc.stderr
    before = server.snapshot()
    assert server.install() == ["systemctl enable --now letsencrypt-cpanel.service"]
    assert server.snapshot() == before


def test_a_newer_version_upgrades_in_place(server: Server, tmp_path: Path) -> None:
    server.use_systemd()
    server.install()
    newer = copy_source(tmp_path / "src")
    init = newer / "letsencrypt_cpanel/__init__.py"
    init.write_text(init.read_text() + "\nUPGRADED = True\n")
    assert server.install(newer) == [
        "systemctl enable --now letsencrypt-cpanel.service",
        "systemctl restart letsencrypt-cpanel.service",
    ]
    hooks = newer / "letsencrypt_cpanel/cpanel_hooks.py"  # e.g. a new event to hook
    hooks.write_text(hooks.read_text() + "\n# one more event\n")
    hook = f"{OPT}/bin/letsencrypt-cpanel-hook"
    assert server.install(newer) == [
        f"manage_hooks delete script {hook}",
        f"manage_hooks add script {hook}",
        "systemctl enable --now letsencrypt-cpanel.service",
        "systemctl restart letsencrypt-cpanel.service",
    ]
    installed = server.path(f"{OPT}/lib/letsencrypt_cpanel/__init__.py").read_text()
    assert "UPGRADED = True" in installed
    assert server.tokens().count("letsencrypt-cpanel") == 1


def test_a_lost_token_is_replaced_not_piled_up(server: Server) -> None:
    server.use_systemd()
    server.install()
    server.path("/etc/letsencrypt-cpanel.secrets").unlink()
    server.install()
    secrets = json.loads(server.path("/etc/letsencrypt-cpanel.secrets").read_text())
    assert whm.check_token(server.root, "root", secrets["whm_token"])
    assert server.tokens().count("letsencrypt-cpanel") == 1


def test_uninstall_removes_everything_but_records_and_config(server: Server) -> None:
    server.use_sysvinit()
    server.path("/etc/chkserv.d").mkdir(parents=True, exist_ok=True)
    server.path("/etc/chkserv.d/chkservd.conf").write_text("cpsrvd:1\nexim:1\n")
    server.install()
    assert server.path("/etc/chkserv.d/chkservd.conf").read_text() == (
        "cpsrvd:1\nexim:1\nletsencrypt-cpanel:1\n"
    )
    record = server.path("/home/alice/.cpanel/nvdata/letsencrypt-cpanel")
    record.parent.mkdir(parents=True)
    record.write_text('{"version": 2}')
    server.path("/etc/letsencrypt-cpanel.conf").write_text('{"default_key_type": "rsa:4096"}\n')

    assert server.uninstall() == [
        "service letsencrypt-cpanel stop",
        "chkconfig --del letsencrypt-cpanel",
        "restartsrv_chkservd",
        f"uninstall_plugin {OPT}/cpanel --theme jupiter",
        f"unregister_appconfig {OPT}/letsencrypt-cpanel-whm.conf",
        f"manage_hooks delete script {OPT}/bin/letsencrypt-cpanel-hook",
    ]
    for gone in [
        OPT,
        JUPITER,
        WHM_CGI,
        "/usr/local/cpanel/whostmgr/docroot/addon_plugins/letsencrypt-cpanel-whm.png",
        "/var/cpanel/apps/letsencrypt-cpanel-whm.conf",
        "/etc/init.d/letsencrypt-cpanel",
        "/etc/chkserv.d/letsencrypt-cpanel",
        "/etc/logrotate.d/letsencrypt-cpanel",
        "/usr/local/bin/le-cp",
    ]:
        assert not server.path(gone).exists() and not server.path(gone).is_symlink(), gone
    assert server.path("/etc/chkserv.d/chkservd.conf").read_text() == "cpsrvd:1\nexim:1\n"
    assert "letsencrypt-cpanel" not in server.tokens()  # revoked, not left behind
    assert json.loads(server.path("/etc/letsencrypt-cpanel.secrets").read_text())["whm_token"] == ""
    assert record.read_text() == '{"version": 2}'
    assert "rsa:4096" in server.path("/etc/letsencrypt-cpanel.conf").read_text()
    # And it comes back cleanly.
    server.install()
    assert server.tokens().count("letsencrypt-cpanel") == 1


def test_cagefs_mounts_the_plugin_folder_in_every_cage(server: Server) -> None:
    server.use_systemd()
    server.add_tool("usr/sbin/cagefsctl")
    mp = server.path("/etc/cagefs/cagefs.mp")
    mp.parent.mkdir(parents=True)
    mp.write_text("/var/lib/mysql\n@/var/spool/cron,700\n")
    commands = server.install()
    assert commands == [*PLUGIN[:3], "cagefsctl --remount-all", *commands[4:]]
    assert mp.read_text() == f"/var/lib/mysql\n@/var/spool/cron,700\n{server.root}{OPT}\n"
    assert "cagefsctl --remount-all" not in server.install()
    assert "cagefsctl --remount-all" in server.uninstall()
    assert mp.read_text() == "/var/lib/mysql\n@/var/spool/cron,700\n"


def test_uninstall_purge_removes_config_secrets_and_state_too(server: Server) -> None:
    server.use_systemd()
    server.install()
    assert server.uninstall("--purge") == [
        "systemctl disable --now letsencrypt-cpanel.service",
        "systemctl daemon-reload",
        "restartsrv_chkservd",
        f"uninstall_plugin {OPT}/cpanel --theme jupiter",
        f"unregister_appconfig {OPT}/letsencrypt-cpanel-whm.conf",
        f"manage_hooks delete script {OPT}/bin/letsencrypt-cpanel-hook",
    ]
    for gone in [
        OPT,
        "/etc/systemd/system/letsencrypt-cpanel.service",
        "/etc/letsencrypt-cpanel.conf",
        "/etc/letsencrypt-cpanel.secrets",
        "/var/lib/letsencrypt-cpanel",
    ]:
        assert not server.path(gone).exists(), gone
    assert "letsencrypt-cpanel" not in server.tokens()


def test_installed_hook_describes_its_events_to_manage_hooks(server: Server) -> None:
    server.use_systemd()
    server.install()
    hook = server.path(f"{OPT}/bin/letsencrypt-cpanel-hook")
    proc = subprocess.run(
        [str(hook), "--describe"],
        env={"LECP_ROOT": str(server.root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    described = json.loads(proc.stdout)
    assert {"Accounts::Create", "UAPI::SubDomain::addsubdomain"} <= {h["event"] for h in described}
    assert {h["hook"] for h in described} == {str(hook)}
