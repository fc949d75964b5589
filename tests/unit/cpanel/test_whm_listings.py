"""WHM listings (listaccts, fetch_ssl_vhosts) read as they arrive: over a transport that offers
`call_whm_parsed` (as the HTTPS one does) each entry becomes its model while the JSON is
decoded, with the same result as the dicts of any other transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from letsencrypt_cpanel.cpanel import WhmAPI
from letsencrypt_cpanel.cpanel.envelope import Args, check_whm_envelope, decode_json_stream
from letsencrypt_cpanel.cpanel.models import Account, SslVhost
from letsencrypt_cpanel.cpanel.whm import ACCOUNT_FIELDS

from .scripted import ScriptedTransport


class StreamedTransport(ScriptedTransport):
    """The scripted answers, as JSON text decoded by the HTTPS transport's stream decoder in
    small chunks, with the caller's object_hook."""

    def call_whm_parsed(
        self, func: str, args: Args, object_hook: Callable[[dict[str, Any]], Any] | None
    ) -> dict[str, Any]:
        self.calls.append((func, [(k, str(v)) for k, v in args.items()]))
        body = json.dumps(self.answers[func]).encode()
        chunks = iter([body[i : i + 37] for i in range(0, len(body), 37)])
        envelope = decode_json_stream(chunks, "", func, transport="t", object_hook=object_hook)
        return check_whm_envelope(func, envelope, transport="t")


def ok(data: Any) -> dict[str, Any]:
    return {"metadata": {"version": 1, "result": 1, "reason": "OK"}, "data": data}


ACCOUNTS = ok(
    {
        "acct": [
            {"user": "alice", "domain": "Alice.TEST", "email": "a@x.test", "suspended": 0},
            {"user": "bob", "domain": "bob.test", "suspended": "1", "uid": "1002", "ipv6": []},
        ]
    }
)


def vhost(servername: str, user: str, names: list[str], cert_names: list[str]) -> dict[str, Any]:
    return {
        "servername": servername,
        "user": user,
        "type": "addon",
        "domains": names,
        "docroot": f"/home/{user}/{servername}",
        "crt": {
            "id": f"id-{servername}",
            "domains": cert_names,
            "subject.commonName": {"commonName": cert_names[0]},
            "issuer.commonName": "Test CA",
            "issuer.organizationName": "Test Org",
            "not_before": 1,
            "not_after": "1803481782",
            "is_self_signed": "0",
            "key_algorithm": "rsaEncryption",
            "modulus_length": 2048,
            "modulus": "ab" * 256,
        },
    }


VHOSTS = ok(
    {
        "vhosts": [
            vhost(
                "a1.alice.test", "alice", ["a1.alice.test", "a1.test"], ["a1.test", "www.a1.test"]
            ),
            vhost("a2.alice.test", "alice", ["a2.alice.test", "a2.test"], ["a2.test"]),
            {"servername": "plain.test", "user": "bob", "crt": None},
        ]
    }
)


def test_listaccts_asks_only_for_the_fields_it_keeps() -> None:
    for transport in (
        ScriptedTransport({"listaccts": ACCOUNTS}),
        StreamedTransport({"listaccts": ACCOUNTS}),
    ):
        WhmAPI(transport).listaccts()
        assert transport.calls == [("listaccts", [("want", ACCOUNT_FIELDS)])]
    kept = set(ACCOUNT_FIELDS.split(","))
    assert kept == {f for f in Account.__dataclass_fields__}


def test_streamed_listings_equal_the_dict_path() -> None:
    answers = {"listaccts": ACCOUNTS, "fetch_ssl_vhosts": VHOSTS}
    streamed = WhmAPI(StreamedTransport(answers))
    plain = WhmAPI(ScriptedTransport(answers))
    accounts = streamed.listaccts()
    assert accounts == plain.listaccts()
    assert [(a.user, a.domain, a.suspended, a.uid) for a in accounts] == [
        ("alice", "alice.test", False, -1),
        ("bob", "bob.test", True, 1002),
    ]
    vhosts = streamed.fetch_ssl_vhosts()
    assert vhosts == plain.fetch_ssl_vhosts()
    assert all(isinstance(v, SslVhost) for v in vhosts)
    first = vhosts[0]
    assert first.certificate is not None and vhosts[2].certificate is None
    assert (first.certificate.not_after, first.certificate.key_type) == (1803481782, "rsa:2048")


def test_no_accounts_found_is_empty_when_streamed() -> None:
    none = {"metadata": {"command": "listaccts", "result": 0, "reason": "No accounts found."}}
    assert WhmAPI(StreamedTransport({"listaccts": none})).listaccts() == []


def test_recurring_strings_of_a_listing_are_held_once() -> None:
    first, second, _ = WhmAPI(StreamedTransport({"fetch_ssl_vhosts": VHOSTS})).fetch_ssl_vhosts()
    assert first.certificate is not None and second.certificate is not None
    # Decoded separately, equal strings would be separate objects: 20,000 vhosts' worth.
    assert first.user is second.user
    assert first.certificate.issuer_cn is second.certificate.issuer_cn
    assert first.certificate.issuer_org is second.certificate.issuer_org
    assert first.type is second.type
    assert first.domains[1] is first.certificate.names[0] is first.certificate.subject_cn
