"""UserAPI over a scripted transport, with answers shaped like cpanel-api.md §2's examples."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from letsencrypt_cpanel.cpanel import NewRecord, UserAPI, soa_serial
from letsencrypt_cpanel.errors import CpanelAPIError

from .certs import self_signed
from .scripted import ScriptedTransport


def ok(data: Any) -> dict[str, Any]:
    return {
        "status": 1,
        "errors": None,
        "messages": None,
        "warnings": None,
        "metadata": {},
        "data": data,
    }


MAIN = {
    "domain": "example.com",
    "servername": "example.com",
    "type": "main_domain",
    "documentroot": "/home/example/public_html/",
    "serveralias": "www.example.com mail.example.com parked.net www.parked.net cpanel.example.com",
}
ADDON = {
    "domain": "addon.com",
    "servername": "addon.example.com",
    "type": "addon_domain",
    "documentroot": "/home/example/addon.com",
    "serveralias": "www.addon.com addon.com www.addon.example.com",
}
SUB = {
    "domain": "blog.example.com",
    "servername": "blog.example.com",
    "type": "sub_domain",
    "documentroot": "/home/example/blog",
    "serveralias": "www.blog.example.com",
}


def test_domains_data_hash() -> None:
    data = {
        "main_domain": MAIN,
        "addon_domains": [ADDON],
        "sub_domains": [0, SUB],
        "parked_domains": ["parked.net"],
    }
    api = UserAPI(ScriptedTransport({"DomainInfo::domains_data": ok(data)}))
    main, addon, sub = api.domains_data()
    assert (main.kind, main.domain, main.docroot) == (
        "main",
        "example.com",
        "/home/example/public_html",
    )
    assert main.names == (
        "example.com",
        "www.example.com",
        "mail.example.com",
        "parked.net",
        "www.parked.net",
    )
    assert (addon.kind, addon.domain, addon.servername) == (
        "addon",
        "addon.com",
        "addon.example.com",
    )
    assert addon.names[:2] == ("addon.com", "www.addon.com")
    assert "addon.example.com" in addon.names
    assert (sub.kind, sub.names) == ("sub", ("blog.example.com", "www.blog.example.com"))


def test_domains_data_main_as_list_and_format_hash_sent() -> None:
    transport = ScriptedTransport({"DomainInfo::domains_data": ok({"main_domain": [MAIN]})})
    assert [v.domain for v in UserAPI(transport).domains_data()] == ["example.com"]
    assert transport.calls == [("DomainInfo::domains_data", [("format", "hash")])]


def test_list_domains_main_string() -> None:
    data = {
        "main_domain": "example.com",
        "addon_domains": ["addon.com"],
        "parked_domains": ["parked.net"],
        "sub_domains": ["blog.example.com"],
        "cp_php_magic_include_path.conf": 0,
    }
    listed = UserAPI(ScriptedTransport({"DomainInfo::list_domains": ok(data)})).list_domains()
    assert listed.main_domain == "example.com" and listed.parked_domains == ("parked.net",)


INSTALLED = json.loads("""
{"status":1,"data":[{"servername":"example.com","ip":"192.0.2.10","docroot":"/home/example/public_html",
 "domains":["example.com","parked.net"],"fqdns":["example.com","mail.example.com","www.example.com"],
 "is_primary_on_ip":0,"needs_sni":1,"mail_sni_status":1,"certificate_text":"PEM",
 "certificate":{"id":"example_com_a74f7_9dddf_1446659822_eae1ff43c4ec1991e195877c55755eff",
   "domains":["example.com","www.example.com"],"subject.commonName":"example.com",
   "issuer.commonName":"R3","issuer.organizationName":"Let's Encrypt","not_before":1415123822,
   "not_after":"1446659822","is_self_signed":"0","is_autossl":0,"validation_type":"dv",
   "key_algorithm":"rsaEncryption","modulus_length":2048}}],
 "errors":null,"messages":null,"warnings":null,"metadata":{"transformed":1}}
""")


def test_installed_hosts() -> None:
    (host,) = UserAPI(ScriptedTransport({"SSL::installed_hosts": INSTALLED})).installed_hosts()
    assert host.servername == "example.com" and host.domains == ("example.com", "parked.net")
    facts = host.certificate
    assert (facts.issuer_cn, facts.issuer_org) == ("R3", "Let's Encrypt")
    assert (facts.not_before, facts.not_after, facts.is_self_signed) == (
        1415123822,
        1446659822,
        False,
    )
    assert host.certificate_pem == "PEM" and "PEM" not in repr(host)


def test_installed_hosts_errors_with_data_are_accepted() -> None:
    answer = dict(INSTALLED, status=0, errors=["Unable to retrieve the installed hosts: x"])
    assert len(UserAPI(ScriptedTransport({"SSL::installed_hosts": answer})).installed_hosts()) == 1
    empty = dict(answer, data=[])
    with pytest.raises(CpanelAPIError):
        UserAPI(ScriptedTransport({"SSL::installed_hosts": empty})).installed_hosts()


INSTALL_OK = {
    "status": 1,
    "errors": None,
    "messages": ["ok"],
    "data": {
        "action": "update",
        "cert_id": "example_com_bbe7e",
        "key_id": "bbe7e_16e2d",
        "domain": "example.com",
        "working_domains": ["example.com", "www.example.com"],
        "warning_domains": [],
        "message": "installed",
    },
}


def test_install_ssl_posts_and_parses() -> None:
    transport = ScriptedTransport({"SSL::install_ssl": INSTALL_OK})
    result = UserAPI(transport).install_ssl("example.com", "CERT", "KEY", "CHAIN")
    assert (result.cert_id, result.key_id, result.recovered) == (
        "example_com_bbe7e",
        "bbe7e_16e2d",
        False,
    )
    assert result.working_domains == ("example.com", "www.example.com")
    assert dict(transport.calls[0][1]) == {
        "domain": "example.com",
        "cert": "CERT",
        "key": "KEY",
        "cabundle": "CHAIN",
    }


def test_install_ssl_unknown_error_with_cert_id() -> None:
    answer = dict(INSTALL_OK, status=0, errors=["An unknown error occurred."])
    result = UserAPI(ScriptedTransport({"SSL::install_ssl": answer})).install_ssl(
        "example.com", "CERT", "KEY"
    )
    assert result.recovered and result.cert_id == "example_com_bbe7e"


def test_install_ssl_unknown_error_found_in_installed_hosts() -> None:
    cert, key = self_signed("example.com")
    hosts = json.loads(json.dumps(INSTALLED))
    hosts["data"][0]["certificate_text"] = cert
    answer = {"status": 0, "errors": ["An unknown error occurred."], "data": None}
    api = UserAPI(ScriptedTransport({"SSL::install_ssl": answer, "SSL::installed_hosts": hosts}))
    result = api.install_ssl("www.example.com", cert, key)
    assert result.recovered and result.cert_id.startswith("example_com_a74f7")
    other, _ = self_signed("example.com")
    with pytest.raises(CpanelAPIError):
        api.install_ssl("example.com", other, key)


def test_install_ssl_real_error_raises() -> None:
    answer = {
        "status": 0,
        "errors": ["Certificate and key do not match."],
        "data": {"cert_id": "x"},
    }
    with pytest.raises(CpanelAPIError) as info:
        UserAPI(ScriptedTransport({"SSL::install_ssl": answer})).install_ssl("a.com", "C", "K")
    assert info.value.reasons == ["Certificate and key do not match."]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"metadata": {}, "status": 1}, True),
        ({"metadata": {}, "status": 0}, False),
        (
            {
                "messages": ["The feature “autossl” exists but is not enabled."],
                "metadata": {},
                "status": 0,
            },
            False,
        ),
        ({"metadata": {}, "status": None}, False),
    ],
)
def test_has_feature(answer: dict[str, Any], expected: bool) -> None:
    api = UserAPI(ScriptedTransport({"Features::has_feature": answer}))
    assert api.has_feature("autossl") is expected


def test_has_feature_real_error_raises() -> None:
    answer = {"status": 0, "errors": ["Failed to load module"], "metadata": {}}
    with pytest.raises(CpanelAPIError):
        UserAPI(ScriptedTransport({"Features::has_feature": answer})).has_feature("x")


def test_storage_lists() -> None:
    certs = [
        {
            "id": "c1",
            "friendly_name": "f",
            "domains": ["A.com"],
            "created": "1601467200",
            "not_after": "1446659822",
            "subject.commonName": {"commonName": "a.com"},
            "is_self_signed": 1,
        }
    ]
    keys = [
        {
            "id": "k1",
            "friendly_name": "TestKey",
            "created": 1601467200,
            "key_algorithm": "rsaEncryption",
            "modulus_length": "2048",
        }
    ]
    api = UserAPI(ScriptedTransport({"SSL::list_certs": ok(certs), "SSL::list_keys": ok(keys)}))
    (cert,) = api.list_certs()
    assert (cert.names, cert.subject_cn, cert.not_after, cert.is_self_signed, cert.created) == (
        ("a.com",),
        "a.com",
        1446659822,
        True,
        1601467200,
    )
    (key,) = api.list_keys()
    assert (key.id, key.modulus_length) == ("k1", 2048)


def test_user_information_multi_names() -> None:
    transport = ScriptedTransport(
        {
            "Variables::get_user_information": ok(
                {"contact_email": "user@example.com", "home": "/home/user"}
            )
        }
    )
    info = UserAPI(transport).get_user_information("contact_email", "home")
    assert info["home"] == "/home/user"
    assert transport.calls[0][1] == [("name", "contact_email"), ("name-1", "home")]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_parse_zone_and_mass_edit() -> None:
    lines = [
        {"line_index": 0, "type": "control", "text_b64": "JFRUTCAxNDQwMA=="},
        {
            "line_index": 1,
            "type": "record",
            "dname_b64": "ZXhhbXBsZS5jb20u",
            "ttl": 86400,
            "record_type": "SOA",
            "data_b64": [
                "bnMxLmV4YW1wbGUuY29tLg==",
                "aG9zdG1hc3Rlci5leGFtcGxlLmNvbS4=",
                "MjAyNDAxMDEwMQ==",
                "MzYwMA==",
                "MTgwMA==",
                "MTIwOTYwMA==",
                "ODY0MDA=",
            ],
        },
    ]
    transport = ScriptedTransport(
        {"DNS::parse_zone": ok(lines), "DNS::mass_edit_zone": ok({"new_serial": "2024010102"})}
    )
    api = UserAPI(transport)
    zone = api.parse_zone("example.com")
    assert zone[0].text == "$TTL 14400" and zone[1].name == "example.com."
    assert soa_serial(zone) == 2024010101
    record = NewRecord("_acme-challenge", 300, "TXT", ("token",))
    assert api.mass_edit_zone("example.com", 2024010101, add=[record], remove=[7]) == 2024010102
    sent = transport.calls[-1][1]
    assert sent[:2] == [("zone", "example.com"), ("serial", "2024010101")]
    assert json.loads(dict(sent)["add"]) == {
        "dname": "_acme-challenge",
        "ttl": 300,
        "record_type": "TXT",
        "data": ["token"],
    }
    assert dict(sent)["remove"] == "7"
