"""The small pure decisions of issue 7: wildcard names, the challenge method, revocation
reasons, the EAB JWS (checked against the acme library's own), the chain by its root's name."""

from __future__ import annotations

import base64
import json

import pytest
from acme import messages
from josepy.jwk import JWKEC, JWKOct
from josepy.jws import JWS

from letsencrypt_cpanel.eab import decode_hmac_key, public_jwk, same_origin, sign_binding
from letsencrypt_cpanel.errors import ConfigError, NameRefused
from letsencrypt_cpanel.issue_plan import AUTO, OrderPlan, choose_profile, revocation_code
from letsencrypt_cpanel.keys import generate_private_key, load_private_key
from letsencrypt_cpanel.names import drop_covered_names, normalize_names, order_names


def test_names_a_wildcard_covers_are_dropped() -> None:
    names = normalize_names(
        ["*.example.com", "example.com", "www.example.com", "a.b.example.com", "*.b.example.com"],
        allow_wildcard=True,
    )
    assert drop_covered_names(names) == [
        "*.example.com",
        "example.com",
        "*.b.example.com",
    ]
    assert order_names(["*.example.com", "www.example.com", "example.com"], "example.com") == [
        "example.com",
        "*.example.com",
        "www.example.com",
    ]
    with pytest.raises(NameRefused):
        normalize_names(["*.example.com"])  # wildcards only where the caller allows them
    with pytest.raises(NameRefused):
        normalize_names(["*.com"], allow_wildcard=True)


def test_the_first_method() -> None:
    assert OrderPlan("https://ca/dir").first_method(["a.test"]) == "http-01"
    assert OrderPlan("https://ca/dir").first_method(["a.test", "*.a.test"]) == "dns-01"
    assert OrderPlan("https://ca/dir", "dns-01").first_method(["a.test"]) == "dns-01"
    assert OrderPlan("https://ca/dir", AUTO).may_fall_back
    assert not OrderPlan("https://ca/dir", "http-01").may_fall_back
    with pytest.raises(NameRefused, match="only dns-01"):
        OrderPlan("https://ca/dir", "http-01").first_method(["*.a.test"])
    with pytest.raises(NameRefused):
        OrderPlan("https://ca/dir", "tls-alpn-01")


def test_revocation_reasons_and_profiles() -> None:
    assert revocation_code("keyCompromise") == 1
    assert revocation_code("SUPERSEDED") == 4
    assert revocation_code("unspecified") == 0
    with pytest.raises(NameRefused):
        revocation_code("cACompromise")  # not a subscriber's reason
    assert choose_profile("", {"classic": ""}) == ""
    assert choose_profile("shortlived", {}) == ""  # a CA listing none gets none
    assert choose_profile("shortlived", {"shortlived": "", "classic": ""}) == "shortlived"
    with pytest.raises(ConfigError):
        choose_profile("nosuch", {"classic": ""})


def test_the_eab_binding_is_the_one_the_acme_library_makes() -> None:
    hmac_key = bytes(range(32))
    text = base64.urlsafe_b64encode(hmac_key).decode().rstrip("=")
    account = JWKEC(key=load_private_key(generate_private_key("ecdsa:p-256")))
    jwk = public_jwk(account.public_key().to_partial_json())
    url = "https://ca.example/acme/new-account"
    ours = sign_binding("kid-9", decode_hmac_key(text), jwk, url)
    directory = messages.Directory.from_json({"newAccount": url})
    theirs = messages.ExternalAccountBinding.from_data(
        account.public_key(), "kid-9", text, directory
    )
    assert json.loads(base64.urlsafe_b64decode(ours["protected"] + "==")) == json.loads(
        base64.urlsafe_b64decode(theirs["protected"] + "==")
    )
    assert json.loads(base64.urlsafe_b64decode(ours["payload"] + "==")) == json.loads(
        base64.urlsafe_b64decode(theirs["payload"] + "==")
    )
    # josepy's own JWS verification accepts our signature with the HMAC key, and no other.
    assert JWS.from_json(ours).verify(JWKOct(key=hmac_key))
    assert not JWS.from_json(ours).verify(JWKOct(key=bytes(32)))


def test_root_refuses_what_is_not_a_public_key_or_another_ca() -> None:
    jwk = {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"}
    assert public_jwk(jwk) == jwk
    for bad in ({**jwk, "d": "c2VjcmV0"}, {"kty": "oct", "k": "c2VjcmV0"}, {**jwk, "crv": "P-1"}):
        with pytest.raises(ValueError):
            public_jwk(bad)
    assert same_origin("https://ca.example/new-acct", "https://CA.example/directory")
    assert not same_origin("https://ca.example:8443/new-acct", "https://ca.example/directory")
    assert not same_origin("http://ca.example/new-acct", "https://ca.example/directory")
    with pytest.raises(ConfigError):
        decode_hmac_key("c2hvcnQ")  # 5 bytes: not a key a CA hands out
