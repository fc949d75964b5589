"""Envelope checks, with the JSON of cpanel-api.md §1.1 and §1.5."""

from __future__ import annotations

import json

import pytest

from letsencrypt_cpanel.cpanel.envelope import (
    UapiCallFailed,
    check_uapi_result,
    check_whm_envelope,
    decode_json,
    expand_args,
)
from letsencrypt_cpanel.errors import CpanelAPIError, CpanelTransportError

UAPI_OK = '{"status":1,"errors":null,"warnings":null,"messages":null,"metadata":{},"data":{"a":1}}'
UAPI_FAIL = (
    '{"status":0,"errors":["You must specify either the “id” or “friendly_name”."],'
    '"data":null,"messages":null,"warnings":null,"metadata":{}}'
)
WHM_OK = (
    '{"metadata":{"command":"gethostname","version":1,"result":1,"reason":"OK"},'
    '"data":{"hostname":"server.example.com"}}'
)


def test_uapi_success_returns_the_result() -> None:
    result = check_uapi_result("M", "f", json.loads(UAPI_OK), transport="t")
    assert result["data"] == {"a": 1}


def test_uapi_status_as_string() -> None:
    assert check_uapi_result("M", "f", {"status": "1", "data": None}, transport="t")


def test_uapi_failure_carries_errors_and_data() -> None:
    with pytest.raises(UapiCallFailed) as info:
        check_uapi_result("SSL", "delete_cert", json.loads(UAPI_FAIL), transport="t")
    err = info.value
    assert isinstance(err, CpanelAPIError)
    assert err.module == "SSL" and err.function == "delete_cert"
    assert err.reasons == ["You must specify either the “id” or “friendly_name”."]
    assert err.transport == "t"
    assert err.data is None


def test_uapi_failure_keeps_populated_data() -> None:
    answer = {"status": 0, "errors": ["unknown error"], "data": {"cert_id": "x"}}
    with pytest.raises(UapiCallFailed) as info:
        check_uapi_result("SSL", "install_ssl", answer, transport="t")
    assert info.value.data == {"cert_id": "x"}


def test_uapi_status_zero_without_errors() -> None:
    with pytest.raises(UapiCallFailed) as info:
        check_uapi_result("Features", "has_feature", {"status": 0, "metadata": {}}, transport="t")
    assert info.value.errors == []


def test_not_a_uapi_result_is_a_transport_error() -> None:
    with pytest.raises(CpanelTransportError):
        check_uapi_result("M", "f", ["x"], transport="t")


@pytest.mark.parametrize("result", [1, "1"])
def test_whm_result_as_number_or_string(result: object) -> None:
    envelope = json.loads(WHM_OK)
    envelope["metadata"]["result"] = result
    assert check_whm_envelope("gethostname", envelope, transport="t")["data"] == {
        "hostname": "server.example.com"
    }


@pytest.mark.parametrize("result", [0, "0"])
def test_whm_failure_raises_the_reason(result: object) -> None:
    envelope = {
        "metadata": {
            "command": "accountsummary",
            "result": result,
            "reason": "Account does not exist.",
        }
    }
    with pytest.raises(CpanelAPIError) as info:
        check_whm_envelope("accountsummary", envelope, transport="t")
    assert info.value.reasons == ["Account does not exist."]
    assert not isinstance(info.value, CpanelTransportError)


def test_whm_not_an_envelope() -> None:
    with pytest.raises(CpanelTransportError):
        check_whm_envelope("f", {"data": {}}, transport="t")


def test_multi_values_use_the_suffix_form() -> None:
    assert expand_args({"name": ["home", "contact_email"], "x": "1"}) == [
        ("name", "home"),
        ("name-1", "contact_email"),
        ("x", "1"),
    ]


def test_decode_json_refuses_html_without_quoting_it() -> None:
    with pytest.raises(CpanelTransportError) as info:
        decode_json(b"<html>secret-session</html>", "M", "f", transport="t")
    assert "secret-session" not in str(info.value)


def test_decode_json_truncated() -> None:
    with pytest.raises(CpanelTransportError) as info:
        decode_json(b'{"status":1,"data":"-----BEGIN', "M", "f", transport="t")
    assert "BEGIN" not in str(info.value)
    assert info.value.__cause__ is None
