"""WhmAPI over a scripted transport, with envelopes shaped like cpanel-api.md §3."""

from __future__ import annotations

from typing import Any

import pytest

from letsencrypt_cpanel.cpanel import WhmAPI
from letsencrypt_cpanel.errors import CpanelAPIError

from .scripted import ScriptedTransport


def ok(func: str, data: Any = None, result: object = 1) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "metadata": {"command": func, "version": 1, "result": result, "reason": "OK"}
    }
    if data is not None:
        envelope["data"] = data
    return envelope


def test_listaccts() -> None:
    data = {
        "acct": [
            {
                "user": "example",
                "domain": "example.com",
                "email": "owner@example.net",
                "owner": "root",
                "suspended": "1",
                "uid": "1001",
            }
        ]
    }
    (acct,) = WhmAPI(ScriptedTransport({"listaccts": ok("listaccts", data, "1")})).listaccts()
    assert (acct.user, acct.domain, acct.suspended, acct.uid) == (
        "example",
        "example.com",
        True,
        1001,
    )


def test_listaccts_none_found_is_empty() -> None:
    none = {"metadata": {"command": "listaccts", "result": 0, "reason": "No accounts found."}}
    assert WhmAPI(ScriptedTransport({"listaccts": none})).listaccts() == []


def test_accountsummary_unknown_user() -> None:
    gone = {"metadata": {"result": 0, "reason": "Account does not exist."}}
    with pytest.raises(CpanelAPIError) as info:
        WhmAPI(ScriptedTransport({"accountsummary": gone})).accountsummary("nobody")
    assert info.value.reasons == ["Account does not exist."]


def test_create_user_session_hides_secrets() -> None:
    data = {
        "url": "https://host:2083/cpsess1234567890/login/?session=example:SECRET",
        "session": "example:SECRET",
        "cp_security_token": "/cpsess1234567890",
        "expires": "1700000000",
        "service": "cpaneld",
    }
    session = WhmAPI(ScriptedTransport({"create_user_session": ok("x", data)})).create_user_session(
        "example"
    )
    assert session.expires == 1700000000 and session.cp_security_token == "/cpsess1234567890"
    assert "SECRET" not in repr(session) and "cpsess" not in repr(session)


def test_fetch_ssl_vhosts_quirks() -> None:
    data = {
        "vhosts": [
            {
                "servername": "example.com",
                "user": "example",
                "type": "main",
                "domains": ["example.com", "www.example.com"],
                "docroot": "/home/example/public_html",
                "crt": {
                    "id": "c",
                    "not_after": "1446659822",
                    "is_self_signed": "0",
                    "subject.commonName": {"commonName": "example.com"},
                    "issuer.organizationName": "Let's Encrypt",
                },
            },
            {"servername": "nocert.example", "user": "u", "crt": None},
        ]
    }
    first, second = WhmAPI(
        ScriptedTransport({"fetch_ssl_vhosts": ok("f", data)})
    ).fetch_ssl_vhosts()
    assert first.certificate is not None
    assert (first.certificate.subject_cn, first.certificate.not_after) == (
        "example.com",
        1446659822,
    )
    assert second.certificate is None


def test_service_components_drop_the_key() -> None:
    data = {
        "services": [
            {
                "service": "cpanel",
                "certificate": "CERT",
                "key": "PRIVATE",
                "cabundle": "",
                "certificate_info": {"not_after": 5, "domains": ["h.example"]},
            }
        ]
    }
    (svc,) = WhmAPI(
        ScriptedTransport({"fetch_service_ssl_components": ok("f", data)})
    ).fetch_service_ssl_components()
    assert svc.service == "cpanel" and svc.certificate is not None
    assert svc.certificate.not_after == 5
    assert "PRIVATE" not in repr(svc) and not hasattr(svc, "key")


def test_hostname_and_token() -> None:
    api = WhmAPI(
        ScriptedTransport(
            {
                "gethostname": ok("gethostname", {"hostname": "server.example.com"}),
                "api_token_create": ok("api_token_create", {"token": "T0KEN", "name": "n"}),
            }
        )
    )
    assert api.gethostname() == "server.example.com"
    assert api.api_token_create("letsencrypt-cpanel") == "T0KEN"
    assert api.transport.calls[-1] == (
        "api_token_create",  # type: ignore[attr-defined]
        [("token_name", "letsencrypt-cpanel")],
    )
