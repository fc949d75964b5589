"""WHM API 1 as the sandbox answers it, checked against the shapes of cpanel-api.md §1.5 and §3."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

from cryptography import x509

from cpanel_sandbox import accounts, layout, sessions, sslstorage, standins, whm
from tests.sandbox.conftest import call
from tests.sandbox.pki import TestCA, ec_key, rsa_key


def whm_call(root: Path, func: str, authuser: str = "root", **args: Any) -> dict[str, Any]:
    raw = {k: (v if isinstance(v, list) else [str(v)]) for k, v in args.items()}
    out = whm.dispatch(root, authuser, func, raw)
    # §1.5 envelope: metadata {command, version, result, reason}; data only when there is data.
    assert set(out) <= {"metadata", "data"}
    assert set(out["metadata"]) == {"command", "version", "result", "reason"}
    assert out["metadata"]["command"] == func and out["metadata"]["version"] == 1
    if out["metadata"]["result"] == 0:
        assert "data" not in out and out["metadata"]["reason"]
    return out


def test_gethostname_and_unknown_function(root: Path) -> None:
    out = whm_call(root, "gethostname")
    assert out == {
        "metadata": {"command": "gethostname", "version": 1, "result": 1, "reason": "OK"},
        "data": {"hostname": "server.sandbox.test"},
    }
    out = whm_call(root, "no_such_function")
    assert out["metadata"]["result"] == 0
    assert out["metadata"]["reason"] == (
        "Unknown app (“no_such_function”) requested for this version (1) of the API."
    )


def test_listaccts_and_accountsummary(root: Path, alice: str) -> None:
    (acct,) = whm_call(root, "listaccts")["data"]["acct"]
    assert acct["user"] == "alice" and acct["domain"] == "example.com"
    assert acct["email"] == "alice@mail.test" and acct["owner"] == "root"
    assert acct["suspended"] == 0 and isinstance(acct["unix_startdate"], int)
    out = whm_call(root, "listaccts", search="example.com", searchtype="domain")
    assert [a["user"] for a in out["data"]["acct"]] == ["alice"]
    out = whm_call(root, "listaccts", search="nobody", searchtype="user", searchmethod="exact")
    assert out["metadata"]["reason"] == "No accounts found."
    out = whm_call(root, "listaccts", search="x", searchtype="nonsense")
    assert out["metadata"]["reason"] == "Unknown search type."
    out = whm_call(root, "listaccts", want="user,email")
    assert out["data"]["acct"] == [{"user": "alice", "email": "alice@mail.test"}]

    out = whm_call(root, "accountsummary", domain="addon.net")
    assert out["data"]["acct"][0]["user"] == "alice"
    out = whm_call(root, "accountsummary", user="ghost")
    assert out["metadata"]["reason"] == "Account does not exist."
    out = whm_call(root, "accountsummary")
    assert out["metadata"]["reason"].startswith("API failure: You must specify a user or domain")


def test_reseller_sees_only_own_accounts(root: Path, alice: str) -> None:
    accounts.add_user(root, "bob", "bob.test", owner="res")
    accounts.add_user(root, "carol", "carol.test", owner="res")
    layout.write_file(layout.resellers_file(root), "res:list-accts,create-acct\nboss:all\n")
    users = [a["user"] for a in whm_call(root, "listaccts", "res")["data"]["acct"]]
    assert users == ["bob", "carol"]
    assert len(whm_call(root, "listaccts", "boss")["data"]["acct"]) == 3
    assert whm_call(root, "accountsummary", "res", user="alice")["metadata"]["result"] == 0
    out = whm_call(root, "create_user_session", "res", user="alice", service="cpaneld")
    assert out["metadata"]["result"] == 0
    out = whm_call(root, "create_user_session", "res", user="bob", service="cpaneld")
    assert out["metadata"]["result"] == 1
    # Not a reseller at all, and root-only functions.
    assert whm_call(root, "listaccts", "alice")["metadata"]["result"] == 0
    assert whm_call(root, "fetch_service_ssl_components", "res")["metadata"]["result"] == 0


def test_create_user_session_and_its_login(root: Path, alice: str) -> None:
    layout.write_file(layout.sandbox_json(root), '{"cpanel_port": 40123, "whm_port": 40124}')
    out = whm_call(root, "create_user_session", user="alice", service="cpaneld")
    assert out["metadata"]["reason"] == "Created session"
    data = out["data"]
    assert set(data) == {"url", "session", "cp_security_token", "expires", "service"}
    token = data["cp_security_token"]
    assert len(token) == len("/cpsess") + 10 and token.startswith("/cpsess")
    url = urllib.parse.urlsplit(data["url"])
    assert url.scheme == "https" and url.port == 40123
    assert url.path == f"{token}/login/"
    assert urllib.parse.parse_qs(url.query)["session"] == [data["session"]]
    assert data["expires"] > time.time()

    assert sessions.check(root, token, None) is None  # not logged in yet
    session = sessions.redeem_login(root, data["session"])
    assert session is not None and session.user == "alice" and session.token == token
    assert sessions.redeem_login(root, data["session"]) is None  # a login URL works once
    assert sessions.check(root, token, session.cookie) == session
    assert sessions.check(root, token, session.cookie + "x") is None
    assert sessions.check(root, "/cpsess0000000000", session.cookie) is None
    sessions.destroy(root, token)
    assert sessions.check(root, token, session.cookie) is None

    out = whm_call(root, "create_user_session", user="root", service="whostmgrd")
    assert urllib.parse.urlsplit(out["data"]["url"]).port == 40124
    out = whm_call(root, "create_user_session", user="ghost", service="cpaneld")
    assert out["metadata"]["result"] == 0
    out = whm_call(root, "create_user_session", user="alice")
    assert out["metadata"]["reason"].startswith("API failure: ")


def test_session_files_are_root_only(root: Path, alice: str) -> None:
    sessions.create(root, "alice", "cpaneld")
    folder = layout.sessions_dir(root)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())


def test_fetch_ssl_vhosts_sends_strings_and_commonname_objects(
    root: Path, alice: str, ca: TestCA
) -> None:
    leaf = ca.leaf(["example.com", "www.example.com"])
    body = call(
        root, alice, "SSL", "install_ssl", domain="example.com", cert=leaf.cert, key=leaf.key
    )
    assert body["status"] == 1
    (vhost,) = whm_call(root, "fetch_ssl_vhosts")["data"]["vhosts"]
    assert vhost["servername"] == "example.com" and vhost["user"] == "alice"
    assert vhost["type"] == "main" and "parked.org" in vhost["domains"]
    crt = vhost["crt"]
    assert crt["id"] == body["data"]["cert_id"]
    assert isinstance(crt["not_after"], str) and crt["not_after"].isdigit()  # §1.6
    assert crt["subject.commonName"] == {"commonName": "example.com"}  # §1.6
    assert crt["issuer.organizationName"] == "Sandbox Tests"
    layout.write_file(layout.resellers_file(root), "res:list-accts\n")
    assert whm_call(root, "fetch_ssl_vhosts", "res")["data"]["vhosts"] == []


def test_service_certificates(root: Path, ca: TestCA) -> None:
    services = whm_call(root, "fetch_service_ssl_components")["data"]["services"]
    assert [s["service"] for s in services] == ["cpanel", "exim", "dovecot", "ftp"]
    for s in services:
        assert s["certificate"].startswith("-----BEGIN CERTIFICATE-----") and s["key"]
        assert s["certificate_info"]["is_self_signed"] == 1 and s["cabundle"] == ""
    # cpanel.pem holds the certificate and the key; CN hostname, SANs hostname + 127.0.0.1.
    pem = sslstorage.service_pem_path(root).read_text()
    assert "PRIVATE KEY" in pem and "BEGIN CERTIFICATE" in pem
    cert = x509.load_pem_x509_certificate(pem[pem.index("-----BEGIN CERTIFICATE") :].encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "server.sandbox.test" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    leaf = ca.leaf(["server.sandbox.test"], key=ec_key())
    out = whm_call(
        root,
        "install_service_ssl_certificate",
        service="cpanel",
        crt=leaf.cert,
        key=leaf.key,
        cabundle=leaf.chain,
    )
    assert out["metadata"]["result"] == 1, out
    assert out["data"]["service"] == "cpanel"
    assert out["data"]["service_description"].startswith("Calendar, cPanel")
    assert out["data"]["certificate_info"]["domains"] == ["server.sandbox.test"]
    crt, key, cab = standins.read_service(root, "cpanel") or ("", "", "")
    assert crt == leaf.cert and cab == leaf.chain and "EC PRIVATE KEY" in key
    assert "restartsrv_cpsrvd" in layout.commands_log(root).read_text()

    other = ca.leaf(["server.sandbox.test"], key=rsa_key(1))
    out = whm_call(
        root, "install_service_ssl_certificate", service="exim", crt=leaf.cert, key=other.key
    )
    assert out["metadata"]["result"] == 0
    out = whm_call(
        root, "install_service_ssl_certificate", service="nope", crt=leaf.cert, key=leaf.key
    )
    assert out["metadata"]["reason"].startswith("API failure: ")


def test_api_tokens(root: Path) -> None:
    kept = layout.root_token_file(root)
    assert kept.stat().st_mode & 0o777 == 0o600
    token = kept.read_text().strip()
    assert whm.check_token(root, "root", token)
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")
    assert not whm.check_token(root, "root", wrong)
    assert not whm.check_token(root, "alice", token)
    stored = layout.api_tokens_file(root, "root").read_text()
    assert token not in stored  # only the SHA-512 is kept

    out = whm_call(root, "api_token_create", token_name="plugin", acl=["all"])
    data = out["data"]
    assert data["name"] == "plugin" and len(data["token"]) == 32 and data["acls"] == ["all"]
    assert whm.check_token(root, "root", data["token"])
    again = whm_call(root, "api_token_create", token_name="plugin")
    assert again["metadata"]["reason"].startswith("API failure: ")
    past = whm_call(root, "api_token_create", token_name="old", expires_at=int(time.time()) - 5)
    assert not whm.check_token(root, "root", past["data"]["token"])
    assert accounts.init_root(root) == token  # init is idempotent and keeps the token
