"""LiveAPI framing and reply parsing (cpanel-api.md §1.3; prior-art §4.6a). Pure: no socket."""

from __future__ import annotations

import json

import pytest

from letsencrypt_cpanel.cpanel.envelope import UapiCallFailed
from letsencrypt_cpanel.cpanel.liveapi import (
    ENABLE_JSON,
    build_liveapi_from_env,
    frame,
    parse_reply,
    reply_complete,
    uapi_action,
)
from letsencrypt_cpanel.errors import CpanelAPIError, CpanelTransportError

RESULT = {"status": 1, "errors": None, "messages": None, "metadata": {}, "data": [{"id": "a"}]}


def test_frame_is_byte_length_newline_payload() -> None:
    assert frame(ENABLE_JSON) == b'23\n<cpaneljson enable="1">'
    assert frame("é") == b"2\n\xc3\xa9"


def test_uapi_action_payload() -> None:
    payload = uapi_action("Variables", "get_user_information", {"name": ["home", "uid"]})
    assert payload.startswith("<cpanelaction>\n") and payload.endswith("\n</cpanelaction>")
    body = json.loads(payload.removeprefix("<cpanelaction>").removesuffix("</cpanelaction>"))
    assert body == {
        "module": "Variables",
        "reqtype": "exec",
        "func": "get_user_information",
        "apiversion": "uapi",
        "args": {"name": "home", "name-1": "uid"},
    }


def test_reply_complete() -> None:
    assert not reply_complete(b"<cpanelresult>{")
    assert reply_complete(bytearray(b"<cpanelresult>{}</cpanelresult>"))


def test_reply_with_result_wrapper() -> None:
    text = "<cpanelresult>" + json.dumps({"apiversion": 3, "result": RESULT}) + "</cpanelresult>"
    assert parse_reply(text, "SSL", "list_certs")["data"] == [{"id": "a"}]


@pytest.mark.parametrize(
    "template",
    [
        "<error>Deprecated</error><cpanelresult>{json}</cpanelresult>",
        "<cpanelresult><error>Deprecated</error>{json}</cpanelresult>",
        "<cpanelresult>\n<error>two\nlines</error>\n{json}\n</cpanelresult>\n",
    ],
)
def test_reply_with_error_prefix(template: str) -> None:
    text = template.replace("{json}", json.dumps({"result": RESULT}))
    assert parse_reply(text, "SSL", "list_certs")["status"] == 1


def test_failed_call_raises_with_reasons() -> None:
    failed = {"result": {"status": 0, "errors": ["Invalid host specified."], "data": None}}
    with pytest.raises(UapiCallFailed) as info:
        parse_reply(f"<cpanelresult>{json.dumps(failed)}</cpanelresult>", "SSL", "install_ssl")
    assert info.value.reasons == ["Invalid host specified."]
    assert info.value.transport == "liveapi"


def test_empty_result_is_an_api_error() -> None:
    with pytest.raises(CpanelAPIError) as info:
        parse_reply("<cpanelresult></cpanelresult>", "SSL", "list_certs")
    assert "empty" in str(info.value)
    with pytest.raises(CpanelAPIError) as info:
        parse_reply("<cpanelresult><error>boom</error></cpanelresult>", "SSL", "list_certs")
    assert info.value.reasons == ["boom"]


def test_garbage_and_truncation_are_transport_errors() -> None:
    with pytest.raises(CpanelTransportError):
        parse_reply('<cpanelresult>{"result":{"status":1', "SSL", "list_certs")
    with pytest.raises(CpanelTransportError):
        parse_reply('<cpanelresult>{"result":{"sta</cpanelresult>', "SSL", "list_certs")
    with pytest.raises(CpanelTransportError):
        parse_reply("<cpanelresult>nothing</cpanelresult>", "SSL", "list_certs")


def test_build_needs_the_socket_variable() -> None:
    with pytest.raises(CpanelTransportError):
        build_liveapi_from_env({})
    api = build_liveapi_from_env({"CPANEL_CONNECT_SOCKET": "/nonexistent/socket"})
    with pytest.raises(CpanelTransportError) as info:
        api.list_certs()
    assert "LiveAPI socket" in str(info.value)


def test_reply_with_xml_prolog() -> None:
    text = '<?xml version="1.0" ?>\n<cpanelresult>' + json.dumps({"result": RESULT})
    assert parse_reply(text + "</cpanelresult>\n", "SSL", "list_certs")["status"] == 1
    with pytest.raises(CpanelAPIError) as info:
        parse_reply('<?xml version="1.0" ?>\n<cpanelresult></cpanelresult>\n', "SSL", "x")
    assert not isinstance(info.value, CpanelTransportError)


def test_html_inside_the_reply_is_a_transport_error() -> None:
    page = "<!DOCTYPE html><html><style>a{color:red}</style></html>"
    with pytest.raises(CpanelTransportError):
        parse_reply(f"<cpanelresult>{page}</cpanelresult>", "SSL", "list_certs")


def test_action_payload_is_ascii() -> None:
    # Perl counts characters where we count bytes; ASCII-only JSON makes both agree (§1.3).
    payload = uapi_action("SSL", "install_ssl", {"domain": "bücher.example"})
    assert payload.isascii()


def test_reply_complete_searches_the_tail_across_chunks() -> None:
    buffer = bytearray(b"x" * 100 + b"</cpanel")
    assert not reply_complete(buffer, 8)
    buffer += b"result>"
    assert reply_complete(buffer, 7)  # the tag straddles two chunks
