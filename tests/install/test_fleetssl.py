"""FleetSSL's plugin, laid out as its installer left it (prior-art §1.1, §4.1-4.3), is retired
by install.sh before ours takes the same names; its users' records are kept."""

from __future__ import annotations

import json
import stat

from cpanel_sandbox import whm
from tests.install.conftest import OPT, Server

FS = "/opt/fleetssl-cpanel"
FLEETSSL_UNIT = f"""[Unit]
Description=FleetSSL cPanel

[Service]
ExecStart={FS}/letsencrypt.live.cgi "-mode" "daemon"
Restart=always
RestartSec=120

[Install]
WantedBy=multi-user.target
"""
FLEETSSL_CONFIG = {"insecure": True, "hostaccountkey": "-----BEGIN EC PRIVATE KEY-----..."}


def lay_out_fleetssl(server: Server) -> None:
    def write(absolute: str, text: str, mode: int = 0o644) -> None:
        path = server.path(absolute)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)

    def symlink(absolute: str, target: str) -> None:
        server.path(absolute).parent.mkdir(parents=True, exist_ok=True)
        server.path(absolute).symlink_to(target)

    fs = f"{server.root}{FS}"
    write(f"{FS}/letsencrypt.live.cgi", "#!/bin/sh\n", 0o755)
    write(f"{FS}/install.json", '[{"type":"link","id":"letsencrypt-cpanel"}]')
    write(f"{FS}/letsencrypt-cpanel-whm.conf", "name=letsencrypt-cpanel-whm\nservice=whostmgr\n")
    write("/var/cpanel/apps/letsencrypt-cpanel-whm.conf", "service=whostmgr\nurl=/cgi/x\n")
    write("/etc/systemd/system/letsencrypt-cpanel.service", FLEETSSL_UNIT)
    symlink("/usr/local/cpanel/base/frontend/jupiter/letsencrypt", fs)
    symlink("/usr/local/cpanel/whostmgr/docroot/cgi/letsencrypt-cpanel", fs)
    symlink("/usr/local/bin/le-cp", f"{fs}/letsencrypt.live.cgi")
    write("/usr/local/cpanel/whostmgr/docroot/addon_plugins/letsencrypt-cpanel-whm.jpg", "jpg")
    write("/var/cpanel/perl/Cpanel/SSL/Auto/Provider/FleetSSLProvider.pm", "package X;\n1;\n")
    write(
        "/etc/chkserv.d/letsencrypt-cpanel",
        "service[letsencrypt-cpanel]=5959,GET /alive HTTP/1.0,HTTP/1..,"
        "/sbin/service letsencrypt-cpanel restart\n",
    )
    write("/etc/chkserv.d/chkservd.conf", "cpsrvd:1\nexim:1\nletsencrypt-cpanel:1\nletsencrypt:1\n")
    write("/etc/letsencrypt-cpanel.conf", json.dumps(FLEETSSL_CONFIG), 0o400)
    token = whm.create_token(server.root, "root", "letsencrypt-cpanel-autogen_2024-05-01_10-00-00")
    write("/etc/.letsencrypt-cpanel-api-token", str(token["token"]), 0o400)
    write("/etc/yum.repos.d/letsencrypt.repo", "baseurl=https://r.cpanel.fleetssl.com\n")
    write("/home/bob/.cpanel/nvdata/letsencrypt-cpanel", '{"Certs": {}}', 0o600)


def test_fleetssl_is_stopped_disabled_and_unregistered_first(server: Server) -> None:
    server.use_systemd()
    lay_out_fleetssl(server)

    assert server.install() == [
        "systemctl disable --now letsencrypt-cpanel.service",
        f"uninstall_plugin {FS} --theme jupiter",
        f"unregister_appconfig {FS}/letsencrypt-cpanel-whm.conf",
        f"install_plugin {OPT}/cpanel --theme jupiter",
        f"register_appconfig {OPT}/letsencrypt-cpanel-whm.conf",
        f"manage_hooks add script {OPT}/bin/letsencrypt-cpanel-hook",
        "restartsrv_chkservd",
        "systemctl daemon-reload",
        "systemctl enable --now letsencrypt-cpanel.service",
    ]

    for gone in [
        FS,
        "/usr/local/cpanel/base/frontend/jupiter/letsencrypt",
        "/usr/local/cpanel/whostmgr/docroot/addon_plugins/letsencrypt-cpanel-whm.jpg",
        "/var/cpanel/perl/Cpanel/SSL/Auto/Provider/FleetSSLProvider.pm",
        "/etc/.letsencrypt-cpanel-api-token",
        "/etc/yum.repos.d/letsencrypt.repo",
    ]:
        assert not server.path(gone).exists() and not server.path(gone).is_symlink(), gone
    # Our files now hold the names FleetSSL's held.
    unit = server.path("/etc/systemd/system/letsencrypt-cpanel.service").read_text()
    assert "fleetssl" not in unit and "letsencrypt-cpaneld --foreground" in unit
    assert "5959" not in server.path("/etc/chkserv.d/letsencrypt-cpanel").read_text()
    assert server.path("/etc/chkserv.d/chkservd.conf").read_text() == (
        "cpsrvd:1\nexim:1\nletsencrypt-cpanel:1\n"
    )
    cgi = server.path("/usr/local/cpanel/whostmgr/docroot/cgi/letsencrypt-cpanel")
    assert cgi.resolve() == server.path(f"{OPT}/whm")
    assert "letsencrypt_cpanel" in server.path("/usr/local/bin/le-cp").read_text()
    # FleetSSL's root token is revoked; ours is the only one the plugin has.
    assert [t for t in server.tokens() if t.startswith("letsencrypt-cpanel")] == [
        "letsencrypt-cpanel"
    ]
    # Its config held private keys: set aside, root-only; ours starts fresh and world-readable.
    aside = server.path("/etc/letsencrypt-cpanel.conf.fleetssl")
    assert json.loads(aside.read_text()) == FLEETSSL_CONFIG
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600
    assert json.loads(server.path("/etc/letsencrypt-cpanel.conf").read_text()) == {}
    # The users' records stay where they are: ours reads and upgrades them.
    record = server.path("/home/bob/.cpanel/nvdata/letsencrypt-cpanel")
    assert record.read_text() == '{"Certs": {}}'

    before = server.snapshot()
    assert server.install() == ["systemctl enable --now letsencrypt-cpanel.service"]
    assert server.snapshot() == before


def test_fleetssl_under_sysvinit_with_both_themes(server: Server) -> None:
    server.use_sysvinit()
    lay_out_fleetssl(server)
    server.path("/etc/systemd/system/letsencrypt-cpanel.service").unlink()
    init = server.path("/etc/init.d/letsencrypt-cpanel")
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_text(f"#!/bin/sh\n# FleetSSL cPanel\nexec {FS}/letsencrypt.live.cgi -mode daemon\n")
    init.chmod(0o755)
    paper = server.path("/usr/local/cpanel/base/frontend/paper_lantern/letsencrypt")
    paper.parent.mkdir(parents=True)
    paper.symlink_to(f"{server.root}{FS}")

    assert server.install() == [
        "service letsencrypt-cpanel stop",
        "chkconfig --del letsencrypt-cpanel",
        f"uninstall_plugin {FS} --theme jupiter",
        f"uninstall_plugin {FS} --theme paper_lantern",
        f"unregister_appconfig {FS}/letsencrypt-cpanel-whm.conf",
        f"install_plugin {OPT}/cpanel --theme jupiter",
        f"register_appconfig {OPT}/letsencrypt-cpanel-whm.conf",
        f"manage_hooks add script {OPT}/bin/letsencrypt-cpanel-hook",
        "restartsrv_chkservd",
        "chkconfig --add letsencrypt-cpanel",
        "service letsencrypt-cpanel start",
    ]
    assert "letsencrypt-cpaneld" in init.read_text()
    assert not paper.is_symlink()
    assert not server.path(FS).exists()


def test_leftovers_of_a_half_removed_fleetssl_are_cleaned(server: Server) -> None:
    server.use_systemd()
    lay_out_fleetssl(server)
    fs = server.path(FS)
    for item in fs.iterdir():
        item.unlink()
    fs.rmdir()  # only the unit, links and files outside /opt are left

    assert server.install()[0] == "systemctl disable --now letsencrypt-cpanel.service"
    assert not server.path("/var/cpanel/perl/Cpanel/SSL/Auto/Provider/FleetSSLProvider.pm").exists()
    assert not server.path("/usr/local/cpanel/base/frontend/jupiter/letsencrypt").is_symlink()
    assert server.path("/etc/chkserv.d/chkservd.conf").read_text() == (
        "cpsrvd:1\nexim:1\nletsencrypt-cpanel:1\n"
    )
