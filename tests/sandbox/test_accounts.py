"""Accounts in cPanel's own formats (cpanel-api.md §4): init, add_user, and accounts by hand."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import yaml

from cpanel_sandbox import accounts, layout, sslstorage, whm
from tests.sandbox.conftest import call
from tests.sandbox.pki import TestCA


def test_init_lays_down_a_cpanel_server(root: Path) -> None:
    for rel in [
        "etc/passwd",
        "etc/group",
        "etc/userdatadomains",
        "etc/trueuserdomains",
        "etc/hostname",
        "var/cpanel/resellers",
        "var/cpanel/features/default",
        "var/cpanel/ssl/cpanel/cpanel.pem",
        "var/cpanel/ssl/exim/exim.crt",
        "var/cpanel/ssl/exim/exim.key",
        "var/cpanel/ssl/dovecot/dovecot.crt",
        "var/cpanel/ssl/ftp/pure-ftpd.pem",
        "var/cpanel/authn/api_tokens_v2/whostmgr/root.json",
        "usr/local/cpanel/bin/uapi",
        "usr/local/cpanel/bin/whmapi1",
        "usr/local/cpanel/bin/register_appconfig",
        "usr/local/cpanel/scripts/install_plugin",
        "usr/local/cpanel/scripts/restartsrv_cpsrvd",
    ]:
        assert (root / rel).is_file(), rel
    assert (root / "etc/userdomains").read_text() == "*: nobody\n"
    assert (root / "var/named").is_dir() and (root / "var/cpanel/users").is_dir()
    assert accounts.hostname(root) == "server.sandbox.test"
    assert stat.S_IMODE(layout.userdatadomains_file(root).stat().st_mode) == 0o640
    assert stat.S_IMODE(sslstorage.service_pem_path(root).stat().st_mode) == 0o600
    tokens = json.loads(layout.api_tokens_file(root, "root").read_text())["tokens"]
    ((digest, record),) = tokens.items()
    assert re.fullmatch(r"[0-9a-f]{128}", digest) and record["token_hash"] == digest
    for rel in ("usr/local/cpanel/bin/uapi", "usr/local/cpanel/scripts/restartsrv_httpd"):
        assert os.access(root / rel, os.X_OK)


def test_init_refuses_a_root_other_uids_cannot_traverse(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(accounts.AccountError) as err:
        accounts.init_root(private / "root")
    assert str(err.value) == (
        f"{private / 'root'} is not traversable by every uid: "
        f"{layout.first_untraversable(private)} lacks the o+x permission."
    )


def test_add_user_writes_cpanels_files(root: Path, alice: str) -> None:
    entry = accounts.passwd_entry(root, alice)
    assert entry is not None and entry.uid >= 20000 and entry.gid == entry.uid
    assert entry.home == root / "home" / "alice"
    machine_uids = {
        int(line.split(":")[2]) for line in Path("/etc/passwd").read_text().splitlines()
    }
    assert entry.uid not in machine_uids
    assert f"alice:x:{entry.uid}:" in layout.group_file(root).read_text()
    home = entry.home.stat()
    assert stat.S_IMODE(home.st_mode) == 0o711
    if os.geteuid() == 0:
        assert home.st_uid == entry.uid
    assert (entry.home / "public_html").is_dir() and (entry.home / "addon.net").is_dir()
    assert (entry.home / "public_html" / "blog").is_dir()

    cp = layout.read_key_values(layout.cpuser_file(root, alice))
    assert cp["DNS"] == "example.com" and cp["OWNER"] == "root" and cp["PLAN"] == "default"
    assert {cp["DNS1"], cp["DNS2"], cp["DNS3"]} == {"addon.net", "blog.example.com", "parked.org"}
    assert cp["CONTACTEMAIL"] == "alice@mail.test" and cp["FEATURELIST"] == "default"
    assert cp["RS"] == "jupiter" and cp["STARTDATE"].isdigit()

    main = yaml.safe_load((layout.userdata_dir(root, alice) / "main").read_text())
    assert main["main_domain"] == "example.com"
    assert main["addon_domains"] == {"addon.net": "addon.example.com"}
    assert main["parked_domains"] == ["parked.org"]
    assert set(main["sub_domains"]) == {"blog.example.com", "addon.example.com"}
    vhost = yaml.safe_load((layout.userdata_dir(root, alice) / "addon.example.com").read_text())
    assert vhost["servername"] == "addon.example.com"
    assert {"addon.net", "www.addon.net"} <= set(vhost["serveralias"].split())

    rows = dict(
        line.split(": ", 1) for line in layout.userdatadomains_file(root).read_text().splitlines()
    )
    fields = rows["addon.net"].split("==")
    assert fields[:4] == ["alice", "root", "addon", "addon.example.com"]
    assert fields[4] == str(entry.home / "addon.net") and fields[5] == "127.0.0.1:80"
    assert rows["parked.org"].split("==")[2:4] == ["parked", "example.com"]
    assert layout.trueuserdomains_file(root).read_text() == "example.com: alice\n"
    lines = layout.userdomains_file(root).read_text().splitlines()
    assert lines[-1] == "*: nobody" and lines[:-1] == sorted(lines[:-1])
    assert "addon.net: alice" in lines and "addon.example.com: alice" in lines
    for zone in ("example.com", "addon.net", "parked.org"):
        assert layout.zone_file(root, zone).is_file()
    assert not layout.zone_file(root, "blog.example.com").exists()


def test_add_user_refuses_duplicates(root: Path, alice: str) -> None:
    with pytest.raises(accounts.AccountError):
        accounts.add_user(root, "alice", "other.test")
    with pytest.raises(accounts.AccountError):
        accounts.add_user(root, "bob", "example.com")
    with pytest.raises(accounts.AccountError):
        accounts.add_user(root, "Bad-Name", "bad.test")
    accounts.add_user(root, "bob", "bob.test")
    bob, alice_entry = accounts.passwd_entry(root, "bob"), accounts.passwd_entry(root, alice)
    assert bob is not None and alice_entry is not None and bob.uid != alice_entry.uid


def test_site_vhosts_route_every_name(root: Path, alice: str) -> None:
    by_name = {v.servername: v for v in accounts.site_vhosts(root)}
    assert set(by_name) == {"example.com", "blog.example.com", "addon.example.com"}
    main = by_name["example.com"]
    assert main.user == alice and main.docroot == root / "home/alice/public_html"
    for name in ("www.example.com", "parked.org", "www.parked.org", "cpanel.example.com"):
        assert name in main.names
    assert "cpanel.parked.org" in main.names
    addon = by_name["addon.example.com"]
    assert {"addon.net", "www.addon.net", "webmail.addon.net"} <= set(addon.names)
    assert "cpanel.blog.example.com" not in by_name["blog.example.com"].names


def _free_uid(root: Path) -> int:
    used = {int(line.split(":")[2]) for line in Path("/etc/passwd").read_text().splitlines()}
    used |= {int(line.split(":")[2]) for line in layout.passwd_file(root).read_text().splitlines()}
    return next(u for u in range(30000, 40000) if u not in used)


def _write_by_hand(root: Path) -> Path:
    """An account written the way an admin (or cPanel itself) would, without add_user."""
    uid = _free_uid(root)
    home = root / "home" / "dave"
    with layout.passwd_file(root).open("a") as fh:
        fh.write(f"dave:x:{uid}:{uid}:Dave:{home}:/bin/bash\n")
    with layout.group_file(root).open("a") as fh:
        fh.write(f"dave:x:{uid}:\n")
    (home / "public_html").mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(home, uid, uid)
        os.chown(home / "public_html", uid, uid)
    layout.cpuser_file(root, "dave").write_text(
        "# written by hand\nDNS=dave.test\nOWNER=root\nPLAN=basic\nCONTACTEMAIL=d@mail.test\n"
    )
    userdata = layout.userdata_dir(root, "dave")
    userdata.mkdir()
    (userdata / "main").write_text(
        "---\nmain_domain: dave.test\naddon_domains: {}\nparked_domains: []\nsub_domains: []\n"
    )
    (userdata / "dave.test").write_text(
        "---\nservername: dave.test\nserveralias: www.dave.test\n"
        f"documentroot: {home}/public_html/\n"  # cPanel's loader strips the trailing slash
        f"user: dave\ngroup: dave\nip: 127.0.0.1\nport: 80\nhomedir: {home}\n"
    )
    (userdata / "dave.test.php-fpm.yaml").write_text("---\n_is_present: 1\n")  # not a vhost
    (userdata / "cache").write_text("junk")
    layout.zone_file(root, "dave.test").write_text(
        "$TTL 300\n@ IN SOA ns1.dave.test. root.dave.test. 2024020301 3600 1800 1209600 300\n"
        "@ IN A 127.0.0.1\n"
    )
    return home


def test_an_account_written_by_hand_works(root: Path, ca: TestCA) -> None:
    home = _write_by_hand(root)
    assert accounts.list_users(root) == ["dave"]
    (vhost,) = accounts.site_vhosts(root)
    assert vhost.servername == "dave.test" and vhost.docroot == home / "public_html"
    assert "www.dave.test" in vhost.names

    data = call(root, "dave", "DomainInfo", "list_domains")["data"]
    assert data["main_domain"] == "dave.test" and data["sub_domains"] == []
    data = call(root, "dave", "DomainInfo", "domains_data")["data"]
    assert data["main_domain"]["documentroot"] == str(home / "public_html")
    info = call(root, "dave", "Variables", "get_user_information", name="plan")["data"]
    assert info == {"plan": "basic"}

    leaf = ca.leaf(["dave.test", "www.dave.test"])
    body = call(
        root, "dave", "SSL", "install_ssl", domain="dave.test", cert=leaf.cert, key=leaf.key
    )
    assert body["status"] == 1, body["errors"]
    assert body["data"]["working_domains"] == ["dave.test", "www.dave.test"]
    assert sslstorage.installed_for_name(root, "www.dave.test") is not None
    zone = call(root, "dave", "DNS", "parse_zone", zone="dave.test")["data"]
    assert any(e.get("record_type") == "SOA" for e in zone)
    users = [a["user"] for a in whm.dispatch(root, "root", "listaccts", {})["data"]["acct"]]
    assert users == ["dave"]


def test_a_broken_hand_written_file_fails_the_call_not_the_server(root: Path, alice: str) -> None:
    (layout.userdata_dir(root, alice) / "main").write_text("main_domain: [unclosed\n")
    body = call(root, alice, "DomainInfo", "list_domains")
    assert body["status"] == 0 and body["errors"] and body["data"] is None
