"""UAPI as the sandbox answers it: envelope, schema, failures and quirks (cpanel-api.md)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from cpanel_sandbox import accounts, layout, sslstorage, uapi
from tests.sandbox.conftest import call
from tests.sandbox.pki import TestCA, ec_key, rsa_key


def test_unknown_function_and_module_use_cpanels_texts(root: Path, alice: str) -> None:
    body = uapi.dispatch(root, alice, "SSL", "no_such", {})
    assert body["status"] == 0 and body["data"] is None
    assert body["errors"] == [
        "The system could not find the function “no_such” in the module “SSL”."
    ]
    body = uapi.dispatch(root, alice, "NoSuch", "x", {})
    assert body["errors"][0].startswith("Failed to load module “NoSuch”: ")


def test_success_envelope_has_nulls_not_empty_lists(root: Path, alice: str) -> None:
    body = call(root, alice, "DomainInfo", "list_domains")
    assert body["status"] == 1
    assert body["errors"] is None and body["warnings"] is None and body["messages"] is None
    assert body["metadata"] == {}


def test_list_domains_main_domain_is_a_string(root: Path, alice: str) -> None:
    data = call(root, alice, "DomainInfo", "list_domains")["data"]
    assert data["main_domain"] == "example.com"  # running code, not the schema's array
    assert data["addon_domains"] == ["addon.net"]
    assert data["parked_domains"] == ["parked.org"]
    assert data["sub_domains"] == ["blog.example.com"]  # the addon's backing sub is left out


def test_domains_data_hash_shapes(root: Path, alice: str) -> None:
    data = call(root, alice, "DomainInfo", "domains_data")["data"]
    main = data["main_domain"]
    assert isinstance(main, dict) and main["type"] == "main_domain"
    assert main["domain"] == main["servername"] == "example.com"
    assert "www.example.com" in main["serveralias"].split()
    assert "parked.org" in main["serveralias"].split()
    assert data["parked_domains"] == ["parked.org"]  # strings, not objects
    (addon,) = data["addon_domains"]
    assert addon["domain"] == "addon.net" and addon["servername"] == "addon.example.com"
    assert addon["type"] == "addon_domain"
    assert addon["documentroot"].endswith("/home/alice/addon.net")
    assert [s["domain"] for s in data["sub_domains"]] == ["blog.example.com"]
    assert all(isinstance(s, dict) for s in data["sub_domains"])


def test_domains_data_list_and_redirect_flag_spellings(root: Path, alice: str) -> None:
    data = call(root, alice, "DomainInfo", "domains_data", format="list")["data"]
    assert [d["domain"] for d in data] == ["example.com", "addon.net", "blog.example.com"]
    assert "can_https_redirect" not in data[0]
    for flag in ("return_https_redirect_status", "return_https_redirects_status"):
        data = call(root, alice, "DomainInfo", "domains_data", format="list", **{flag: 1})["data"]
        assert all("is_https_redirecting" in d for d in data)


def test_domains_data_sub_is_0_when_its_userdata_file_is_missing(root: Path, alice: str) -> None:
    (layout.userdata_dir(root, alice) / "blog.example.com").unlink()
    body = uapi.dispatch(root, alice, "DomainInfo", "domains_data", {})
    assert body["data"]["sub_domains"] == [0]


def test_single_domain_data(root: Path, alice: str) -> None:
    data = call(root, alice, "DomainInfo", "single_domain_data", domain="example.com")["data"]
    assert data["type"] == "main_domain" and data["documentroot"].endswith("/public_html")
    data = call(root, alice, "DomainInfo", "single_domain_data", domain="addon.net")["data"]
    assert data["type"] == "addon_domain"
    body = call(root, alice, "DomainInfo", "single_domain_data")
    assert body["errors"] == ["Domain must be passed as a parameter."]
    body = call(root, alice, "DomainInfo", "single_domain_data", domain="parked.org")
    assert body["status"] == 0 and body["errors"] == ["Unable to locate the domain: parked.org"]


def test_multi_value_rule_orders_plain_then_by_number(root: Path, alice: str) -> None:
    args = {"name-2": ["uid"], "name": ["home"], "name-1": ["contact_email"]}
    body = uapi.dispatch(root, alice, "Variables", "get_user_information", args)
    assert list(body["data"]) == ["home", "contact_email", "uid"]
    # Repeating the same name is the other spelling (parse_qs gives a list).
    body = uapi.dispatch(root, alice, "Variables", "get_user_information", {"name": ["uid", "gid"]})
    assert list(body["data"]) == ["uid", "gid"]
    assert layout.Args({"name-10": ["c"], "name-9": ["b"], "name": ["a"]}).get_multiple("name") == [
        "a",
        "b",
        "c",
    ]
    assert layout.Args({"names": ["x"], "name-x": ["y"]}).get_multiple("name") == []


def test_get_user_information(root: Path, alice: str) -> None:
    data = call(root, alice, "Variables", "get_user_information")["data"]
    entry = accounts.passwd_entry(root, alice)
    assert entry is not None
    assert data["home"] == str(entry.home) and data["uid"] == entry.uid
    assert data["contact_email"] == "alice@mail.test" and data["contact_email_2"] == ""
    assert set(data["domains"]) == {"example.com", "addon.net", "blog.example.com", "parked.org"}
    body = call(root, alice, "Variables", "get_user_information", name="nope")
    assert body["status"] == 0 and "unknown value" in body["errors"][0]


def test_has_feature_and_feature_gates(root: Path, alice: str, ca: TestCA) -> None:
    assert call(root, alice, "Features", "has_feature", name="sslinstall")["status"] == 1
    body = call(root, alice, "Features", "has_feature", name="not_a_feature")
    assert body["status"] is None
    layout.write_file(layout.feature_list_file(root, "default"), "sslinstall=0\n")
    body = call(root, alice, "Features", "has_feature", name="sslinstall")
    assert body["status"] == 0
    assert body["messages"] == ["The feature “sslinstall” exists but is not enabled."]
    leaf = ca.leaf(["example.com"])
    body = call(
        root, alice, "SSL", "install_ssl", domain="example.com", cert=leaf.cert, key=leaf.key
    )
    assert body["errors"] == ["You do not have the feature “sslinstall”."]
    assert call(root, alice, "SSL", "installed_hosts")["status"] == 0
    assert call(root, alice, "SSL", "list_certs")["status"] == 1  # sslmanager is still on
    layout.write_file(layout.feature_list_file(root, "default"), "sslmanager=0\n")
    assert call(root, alice, "SSL", "list_keys")["errors"] == [
        "You do not have the feature “sslmanager”."
    ]


def _install(root: Path, user: str, ca: TestCA, names: list[str], **extra: str) -> dict:
    leaf = ca.leaf(names)
    args = {"domain": names[0], "cert": leaf.cert, "key": leaf.key, "cabundle": leaf.chain}
    args.update(extra)
    return call(root, user, "SSL", "install_ssl", **args)


def test_install_ssl_success_saves_storage_and_installs(root: Path, alice: str, ca: TestCA) -> None:
    body = _install(root, alice, ca, ["example.com", "www.example.com"], domain="www.example.com")
    assert body["status"] == 1, body["errors"]
    assert body["messages"] == [
        "The certificate was successfully installed on the domain “example.com”."
    ]
    data = body["data"]
    assert data["domain"] == "example.com"  # leading www. stripped
    assert data["action"] == "install" and data["user"] == alice
    assert "www.example.com" in data["working_domains"]
    assert "parked.org" in data["warning_domains"]
    assert "Apache is restarting in the background" in data["statusmsg"]
    assert re.fullmatch(r"[0-9a-f]{5}_[0-9a-f]{5}_[0-9a-f]{32}", data["key_id"])
    assert re.fullmatch(r"example_com_[0-9a-f]{5}_[0-9a-f]{5}_\d{10}_[0-9a-f]{32}", data["cert_id"])
    assert data["key_id"].split("_")[:2] == data["cert_id"].split("_")[2:4]

    entry = accounts.passwd_entry(root, alice)
    assert entry is not None
    key_file = entry.home / "ssl" / "keys" / f"{data['key_id']}.key"
    crt_file = entry.home / "ssl" / "certs" / f"{data['cert_id']}.crt"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for path in (key_file, crt_file, entry.home / "ssl" / "ssl.db"):
        assert path.stat().st_uid == (entry.uid if os.geteuid() == 0 else os.geteuid())
    combined = (layout.apache_tls_dir(root, "example.com") / "combined").read_text()
    assert combined.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert combined.count("BEGIN CERTIFICATE") == 2  # leaf and the CA from cabundle

    chain, key = sslstorage.installed_for_name(root, "www.example.com") or ("", "")
    assert chain.count("BEGIN CERTIFICATE") == 2 and "PRIVATE KEY" in key
    assert sslstorage.installed_for_name(root, "parked.org") is not None  # same vhost
    assert sslstorage.installed_for_name(root, "blog.example.com") is None

    again = _install(root, alice, ca, ["example.com"])
    assert again["data"]["action"] == "update"


def test_installed_hosts_and_list_functions(root: Path, alice: str, ca: TestCA) -> None:
    installed = _install(root, alice, ca, ["addon.net", "www.addon.net"])["data"]
    hosts = call(root, alice, "SSL", "installed_hosts")
    assert hosts["metadata"] == {"transformed": 1}
    (host,) = hosts["data"]
    assert host["servername"] == "addon.example.com"
    assert "addon.net" in host["domains"] and "cpanel.addon.net" in host["fqdns"]
    cert = host["certificate"]
    assert cert["id"] == installed["cert_id"]
    assert cert["subject.commonName"] == "addon.net"
    assert cert["issuer.commonName"] == "Sandbox Test CA"
    assert cert["is_self_signed"] == 0 and isinstance(cert["not_after"], int)
    assert host["certificate_text"].startswith("-----BEGIN CERTIFICATE-----")

    (crt,) = call(root, alice, "SSL", "list_certs")["data"]
    assert crt["id"] == installed["cert_id"] and crt["domain_is_configured"] == 1
    assert crt["friendly_name"] == "addon.net"
    (key,) = call(root, alice, "SSL", "list_keys")["data"]
    assert key["id"] == installed["key_id"] and key["modulus_length"] == 2048


def test_install_ssl_failures(root: Path, alice: str, ca: TestCA) -> None:
    leaf = ca.leaf(["example.com"])
    other = ca.leaf(["example.com"], key=rsa_key(1))
    body = call(root, alice, "SSL", "install_ssl", domain="example.com", key=leaf.key)
    assert body["status"] == 0 and body["errors"] == ["No 'cert' argument specified."]
    body = call(
        root, alice, "SSL", "install_ssl", domain="example.com", cert=leaf.cert, key=other.key
    )
    assert body["errors"] == ["Certificate and key do not match."]
    broken = leaf.cert.replace("\n", "", 3)[:200] + "\n-----END CERTIFICATE-----\n"
    body = call(root, alice, "SSL", "install_ssl", domain="example.com", cert=broken, key=leaf.key)
    assert body["errors"][0].startswith(
        "The system could not parse the certificate because of an error: "
    )
    body = call(root, alice, "SSL", "install_ssl", domain="example.com", cert=leaf.cert)
    assert body["errors"] == ["No key in your account matches the given certificate."]
    foreign = ca.leaf(["foreign.test"])
    body = call(
        root, alice, "SSL", "install_ssl", domain="foreign.test", cert=foreign.cert, key=foreign.key
    )
    assert body["status"] == 0
    assert (
        body["errors"][0] == "The certificate could not be installed on the domain “foreign.test”."
    )
    assert len(body["errors"]) == 2  # cPanel adds the adminbin's raw error line
    assert sslstorage.installed_for_name(root, "foreign.test") is None


def test_install_ssl_uses_a_stored_key_when_key_is_omitted(
    root: Path, alice: str, ca: TestCA
) -> None:
    leaf = ca.leaf(["blog.example.com"], key=rsa_key(2))
    sslstorage.save_key(root, alice, leaf.key, "kept")
    body = call(root, alice, "SSL", "install_ssl", domain="blog.example.com", cert=leaf.cert)
    assert body["status"] == 1, body["errors"]
    assert sslstorage.installed_for_name(root, "www.blog.example.com") is not None


def test_ecdsa_ids(root: Path, alice: str, ca: TestCA) -> None:
    leaf = ca.leaf(["example.com"], key=ec_key())
    body = call(
        root, alice, "SSL", "install_ssl", domain="example.com", cert=leaf.cert, key=leaf.key
    )
    assert body["status"] == 1, body["errors"]
    assert re.fullmatch(r"ec-[0-9a-f]{10}_[0-9a-f]{32}", body["data"]["key_id"])
    assert re.fullmatch(r"ec-example_com_[0-9a-f]{10}_\d{10}_[0-9a-f]{32}", body["data"]["cert_id"])
    (key,) = call(root, alice, "SSL", "list_keys")["data"]
    assert key["key_algorithm"] == "id-ecPublicKey" and key["ecdsa_curve_name"] == "prime256v1"


def test_delete_ssl_leaves_storage(root: Path, alice: str, ca: TestCA) -> None:
    _install(root, alice, ca, ["example.com"])
    body = call(root, alice, "SSL", "delete_ssl", domain="example.com")
    assert body["status"] == 1 and body["data"] is None
    assert body["messages"] == ["The SSL host was successfully removed."]
    assert sslstorage.installed_for_name(root, "example.com") is None
    assert call(root, alice, "SSL", "installed_hosts")["data"] == []
    assert len(call(root, alice, "SSL", "list_certs")["data"]) == 1
    body = call(root, alice, "SSL", "delete_ssl", domain="example.com")
    assert body["status"] == 0 and body["errors"][0].startswith(
        "Failed to remove SSL host for “example.com”: "
    )


def test_delete_cert_and_key(root: Path, alice: str, ca: TestCA) -> None:
    data = _install(root, alice, ca, ["example.com"])["data"]
    body = call(root, alice, "SSL", "delete_cert", id=data["cert_id"])
    assert body["status"] == 1 and body["data"][0]["id"] == data["cert_id"]
    assert call(root, alice, "SSL", "list_certs")["data"] == []
    body = call(root, alice, "SSL", "delete_cert", id=data["cert_id"])
    assert body["status"] == 1 and body["data"] is None  # nothing to delete is not an error
    body = call(root, alice, "SSL", "delete_key", friendly_name="example.com")
    assert body["data"][0]["id"] == data["key_id"]
    assert call(root, alice, "SSL", "delete_key")["errors"] == [
        "You must specify either the “id” or “friendly_name”."
    ]
    assert call(root, alice, "SSL", "delete_key", id="../x")["errors"] == [
        "The “id” parameter is invalid."
    ]


def test_storage_refuses_links_planted_in_the_home(root: Path, alice: str, ca: TestCA) -> None:
    entry = accounts.passwd_entry(root, alice)
    assert entry is not None
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    (entry.home / "ssl").symlink_to(elsewhere)
    body = _install(root, alice, ca, ["example.com"])
    assert body["status"] == 0 and "symbolic link" in body["errors"][0]
    assert list(elsewhere.iterdir()) == []
