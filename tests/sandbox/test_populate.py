"""populate: accounts written in bulk are the same files add_user writes, and work the same
through UAPI and WHM; with certificates, the plugin's record and cPanel's SSL storage agree."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import NameOID

from cpanel_sandbox import accounts, layout, populate, whm
from letsencrypt_cpanel.certificates import renewal_due
from letsencrypt_cpanel.record_format import STATE_INSTALLED, Record
from tests.fixtures.sandbox import RunningSandbox, run_cli
from tests.sandbox.conftest import call


@pytest.fixture
def twin_roots() -> Iterator[tuple[Path, Path]]:
    parent = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="populate-test-"))
    os.chmod(parent, 0o755)  # noqa: S103 - every uid must traverse a sandbox root
    roots = (parent / "added", parent / "populated")
    for root in roots:
        accounts.init_root(root)
    yield roots
    shutil.rmtree(parent, ignore_errors=True)


def _files(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """relative path -> (text with the run's timestamps masked, mode, uid, gid)."""
    out: dict[str, tuple[str, int, int, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        skipped = ("usr/", "var/cpanel/ssl/", "var/cpanel/authn/", "var/cpanel/sandbox-root")
        if rel.startswith(skipped) or ".lock" in rel:
            continue
        st = path.lstat()
        text = path.read_text(encoding="utf-8") if stat.S_ISREG(st.st_mode) else ""
        text = re.sub(r"STARTDATE=\d+", "STARTDATE=*", text)
        text = re.sub(r"\(update_time\):\d+", "(update_time):*", text)
        out[rel] = (text.replace(str(root), "ROOT"), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def test_same_files_as_add_user(twin_roots: tuple[Path, Path]) -> None:
    added, populated = twin_roots
    accounts.add_user(added, "u0001", "u0001.test", addons=["a1-u0001.test", "a2-u0001.test"])
    accounts.add_user(added, "u0002", "u0002.test", addons=["a1-u0002.test"])
    accounts.add_user(added, "u0003", "u0003.test", addons=["a1-u0003.test"])
    result = populate.populate(populated, 3, 7, processes=1)
    assert result.users == ["u0001", "u0002", "u0003"] and result.vhosts == 7
    want, got = _files(added), _files(populated)
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], rel


def test_refuses_names_that_exist(twin_roots: tuple[Path, Path]) -> None:
    root = twin_roots[1]
    accounts.add_user(root, "u0002", "taken.test")
    before = layout.passwd_file(root).read_text(encoding="utf-8")
    with pytest.raises(populate.PopulateError, match="u0002"):
        populate.populate(root, 3, 3)
    assert layout.passwd_file(root).read_text(encoding="utf-8") == before
    assert not (root / "home" / "u0001").exists()
    with pytest.raises(populate.PopulateError):
        populate.populate(root, 3, 2, prefix="x")  # fewer vhosts than users
    with pytest.raises(populate.PopulateError, match="--certs"):
        populate.populate(root, 1, 1, prefix="y", due=1)


@pytest.fixture
def certified(twin_roots: tuple[Path, Path]) -> tuple[Path, populate.PopulateResult]:
    root = twin_roots[1]
    result = populate.populate(root, 4, 10, with_certs=True, due=3, directory="https://ca.test/d")
    return root, result


def _record(root: Path, user: str) -> tuple[Record, os.stat_result]:
    path = root / "home" / user / ".cpanel" / "nvdata" / "letsencrypt-cpanel"
    return Record.from_json(path.read_text(encoding="utf-8")), path.stat()


def test_certificates_in_record_and_ssl_storage(
    certified: tuple[Path, populate.PopulateResult],
) -> None:
    root, result = certified
    assert result.certificates == 10 and result.due == 3
    now = time.time()
    due = 0
    for user in result.users:
        entry = accounts.passwd_entry(root, user)
        assert entry is not None
        record, st = _record(root, user)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (entry.uid, entry.gid, 0o600)
        domains = call(root, user, "DomainInfo", "list_domains")["data"]
        vhost_domains = [domains["main_domain"], *domains["addon_domains"]]
        assert sorted(record.certificates) == sorted(vhost_domains)
        hosts = call(root, user, "SSL", "installed_hosts")["data"]
        by_name = {d: h for h in hosts for d in h["domains"]}
        for vhost, cert in record.certificates.items():
            assert cert.state == STATE_INSTALLED and cert.directory == "https://ca.test/d"
            assert cert.names == [vhost, f"www.{vhost}"]
            host = by_name[vhost]
            assert host["certificate"]["id"] == cert.cert_id
            assert host["certificate_text"].strip() == cert.cert_pem.strip()
            assert host["certificate"]["not_after"] == cert.not_after
            due += renewal_due(cert.not_before, cert.not_after, now, 1 / 3)
        listed = {c["id"] for c in call(root, user, "SSL", "list_certs")["data"]}
        assert {c.cert_id for c in record.certificates.values()} == listed
        (key,) = call(root, user, "SSL", "list_keys")["data"]
        assert {c.key_id for c in record.certificates.values()} == {key["id"]}
    assert due == 3


def test_whm_sees_every_account_and_certificate(
    certified: tuple[Path, populate.PopulateResult],
) -> None:
    root, result = certified
    raw: dict[str, Any] = {}
    listed = whm.dispatch(root, "root", "listaccts", raw)["data"]["acct"]
    assert sorted(a["user"] for a in listed) == result.users
    vhosts = whm.dispatch(root, "root", "fetch_ssl_vhosts", raw)["data"]["vhosts"]
    assert len(vhosts) == 10
    assert {v["crt"]["issuer.commonName"] for v in vhosts} == {populate.CA_NAME}


def test_cli_and_a_running_sandbox(
    twin_roots: tuple[Path, Path], fresh_sandbox: Callable[..., RunningSandbox]
) -> None:
    root = twin_roots[1]
    out = run_cli("populate", str(root), "--users", "2", "--vhosts", "3", "--certs")
    assert out.startswith("2 users, 3 vhosts, 3 certificates (0 due)")
    sandbox = fresh_sandbox(root=root)
    session = sandbox.login("u0001")
    reply = sandbox.uapi(session, "DomainInfo", "domains_data", {"format": "hash"})
    data = reply.json()["data"]
    assert data["main_domain"]["domain"] == "u0001.test"
    assert [a["domain"] for a in data["addon_domains"]] == ["a1-u0001.test"]
    reply = sandbox.whm_api("fetch_ssl_vhosts")
    assert len(json.loads(reply.body)["data"]["vhosts"]) == 3
    cert = sandbox.fetch_site_cert("a1-u0001.test")
    (cn,) = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == populate.CA_NAME
