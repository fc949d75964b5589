"""cPanel's quirks, each in its named function (cpanel-api.md §0, §1.6, §2)."""

from __future__ import annotations

import json

import pytest

from letsencrypt_cpanel.cpanel import quirks

from .certs import self_signed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1446659822, 1446659822),
        ("1446659822", 1446659822),
        (" 7 ", 7),
        ("1.0", 1),
        (None, 0),
        ("", 0),
        ("abc", 0),
        (True, 1),
        (2.9, 2),
    ],
)
def test_numbers_may_be_strings(value: object, expected: int) -> None:
    assert quirks.as_int(value) == expected


def test_flags_as_numbers_or_strings() -> None:
    assert quirks.as_bool("1") and quirks.as_bool(1)
    assert not quirks.as_bool("0") and not quirks.as_bool(0) and not quirks.as_bool(None)


def test_main_domain_is_a_string_in_list_domains() -> None:
    data = json.loads('{"main_domain":"example.com","addon_domains":["addon.com"]}')
    assert quirks.main_domain_name(data["main_domain"]) == "example.com"


def test_main_domain_is_an_object_in_domains_data_or_a_list_in_the_schema() -> None:
    obj = {"domain": "example.com", "servername": "example.com"}
    assert quirks.main_domain_name(obj) == "example.com"
    assert quirks.main_domain_name([obj]) == "example.com"
    assert quirks.main_domain_name(["example.com"]) == "example.com"
    assert quirks.main_domain_object(obj) == obj
    assert quirks.main_domain_object([obj]) == obj
    assert quirks.main_domain_object(None) is None


def test_sub_domains_element_may_be_zero() -> None:
    subs = [0, {"domain": "blog.example.com"}, None, "x"]
    assert quirks.domain_objects(subs) == [{"domain": "blog.example.com"}]


def test_common_name_string_or_object() -> None:
    assert quirks.common_name("example.com") == "example.com"
    assert quirks.common_name({"commonName": "example.com"}) == "example.com"
    assert quirks.common_name({"commonName": {"commonName": "example.com"}}) == "example.com"
    assert quirks.common_name(None) == ""


def test_dotted_fields_flat_or_nested() -> None:
    assert quirks.dotted({"issuer.commonName": "R3"}, "issuer", "commonName") == "R3"
    assert quirks.dotted({"issuer": {"commonName": "R3"}}, "issuer", "commonName") == "R3"
    assert quirks.dotted({}, "issuer", "commonName") is None


def test_install_ssl_unknown_error() -> None:
    assert quirks.is_unknown_error(["An unknown error occurred."])
    assert not quirks.is_unknown_error(["Certificate and key do not match."])
    assert quirks.install_reported_cert_id({"cert_id": "example_com_1"}) == "example_com_1"
    assert quirks.install_reported_cert_id(None) == ""


def test_same_certificate_ignores_layout_and_chain() -> None:
    cert, _ = self_signed()
    other, _ = self_signed()
    assert quirks.same_certificate(cert, cert.replace("\n", "\r\n") + "\n\n" + other)
    assert not quirks.same_certificate(cert, other)
    assert not quirks.same_certificate("", "")


def test_error_prefix_before_json() -> None:
    text = '<error>Deprecated call</error>{"result":{"status":1}}'
    rest, warnings = quirks.strip_error_prefix(text)
    assert json.loads(rest) == {"result": {"status": 1}}
    assert warnings == ["Deprecated call"]


def test_proxy_subdomains() -> None:
    own = ["example.com", "parked.net"]
    assert quirks.is_proxy_subdomain("cpanel.example.com", own)
    assert quirks.is_proxy_subdomain("webmail.parked.net", own)
    assert not quirks.is_proxy_subdomain("mail.example.com", own)
    assert not quirks.is_proxy_subdomain("webmail.other.org", own)


def test_lists_tolerate_null_and_junk() -> None:
    assert quirks.as_str_list(None) == []
    assert quirks.as_str_list("a") == ["a"]
    assert quirks.as_str_list(["a", None, 3, ""]) == ["a", "3"]
