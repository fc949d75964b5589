"""Property-based fuzzing of the cPanel page's WSGI app, in process, as one logged-in user.

The app answers through a real cPanel session on the sandbox (read-only answers are replayed
from the first real answer, so 2,000 requests take seconds) and its real issuer, pointed at a CA
that does not listen: a request that gets that far proves only that it was well-formed.

For arbitrary methods, query strings, forms, JSON bodies and headers, every answer must be a page,
a redirect or a clean 4xx (a 502 only when the request was good enough to reach the issuer);
never an exception out of the app, never a traceback, never markup the request carried echoed
back unescaped into HTML, never anything but JSON to a JSON client.
"""

from __future__ import annotations

import dataclasses
import io
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from letsencrypt_cpanel.config import Secrets, load_settings
from letsencrypt_cpanel.cpanel.envelope import Args
from letsencrypt_cpanel.cpanel.https import build_whm_api
from letsencrypt_cpanel.cpanel.session import user_session
from letsencrypt_cpanel.cpanel.tls import load_pinned_tls
from letsencrypt_cpanel.cpanel.uapi import UserAPI
from letsencrypt_cpanel.web.cpanel import create_app
from letsencrypt_cpanel.web.cpanel_context import default_issuer
from letsencrypt_cpanel.web.csrf import CsrfGuard
from letsencrypt_cpanel.web.nvdata_files import NvdataFolder
from letsencrypt_cpanel.web.rendering import templates_dir
from tests.fixtures.plugin_pages import enable_plugin_feature
from tests.fixtures.sandbox import RunningSandbox

EXAMPLES = 2000
SESSION = "/cpsess7777777777"
SCRIPT = "/frontend/jupiter/letsencrypt-cpanel/letsencrypt.live.cgi"
# Answers that never change during the run: replayed after the first real one.
READ_ONLY = {
    "Features::has_feature",
    "DomainInfo::domains_data",
    "DomainInfo::single_domain_data",
    "DomainInfo::list_domains",
    "SSL::installed_hosts",
    "SSL::list_certs",
    "SSL::list_keys",
    "Variables::get_user_information",
}
MARKUP = ["<hx-mark>", '"><hx-img src=x>', "'><hx-script>", "</textarea><hx-t>", 'x" hx-attr="1']


class ReplayingTransport:
    """The real session transport; read-only calls are answered again from their first reply."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: dict[str, dict[str, Any]] = {}

    def call_uapi(self, module: str, func: str, args: Args) -> dict[str, Any]:
        name = f"{module}::{func}"
        if name not in READ_ONLY:
            return dict(self.inner.call_uapi(module, func, args))
        key = name + json.dumps(args, sort_keys=True, default=str)
        if key not in self.seen:
            self.seen[key] = self.inner.call_uapi(module, func, args)
        return json.loads(json.dumps(self.seen[key]))


@dataclasses.dataclass
class Target:
    app: Any
    domain: str
    other_domain: str
    csrf: str
    issuer_reached: list[int]
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)
    markup_checked: int = 0


@pytest.fixture(scope="module")
def target(sandbox: RunningSandbox, lecp: Any, tmp_path_factory: Any) -> Iterator[Target]:
    enable_plugin_feature(sandbox)
    sandbox.add_user("fuzzcp1u", "fuzzcp1.test", addons=["fuzzadd1.test"], parked=["fzp1.test"])
    sandbox.add_user("fuzzcp2u", "fuzzcp2.test")
    base = load_settings({"LECP_ROOT": str(sandbox.root)})
    # A CA that does not listen: whatever reaches the issuer fails fast, Pebble is left alone.
    page_settings = dataclasses.replace(base, acme_directory="https://127.0.0.1:9/dir")
    tls = load_pinned_tls(base)
    whm = build_whm_api(base, Secrets(whm_token=sandbox.whm_token), tls, timeout=20)
    home = Path(tmp_path_factory.mktemp("fuzz-home"))
    reached: list[int] = []

    def issuer(*args: Any) -> Any:
        reached.append(1)
        return default_issuer(*args)

    session = whm.create_user_session("fuzzcp1u")
    with user_session(session, tls, timeout=20, host="127.0.0.1", port=base.cpanel_port) as api:
        transport = ReplayingTransport(api.transport)
        app = create_app(
            page_settings,
            lambda env: UserAPI(transport),
            templates=templates_dir(),
            home_finder=lambda s, env: home,
            issuer_factory=issuer,
        )
        token = CsrfGuard(NvdataFolder(home), SESSION).token()
        yield Target(app, "fuzzcp1.test", "fuzzcp2.test", token, reached)


FIELDS = [
    "action",
    "api_function",
    "vhost",
    "virtual_host",
    "domain",
    "name",
    "names",
    "dns_identifiers",
    "key_type",
    "csrf_token",
    "disable_mail",
    "send_success_mail",
    "cert_id",
    "key_id",
    "id",
]
ACTIONS = ["", "home", "list", "issue", "view", "remove", "reinstall", "settings", "progress"]
API_FUNCS = [
    "list-certificates",
    "issue-certificate",
    "reinstall-certificate",
    "remove-certificate",
]


def values(target: Target) -> st.SearchStrategy[str]:
    known = [
        *ACTIONS,
        *API_FUNCS,
        target.domain,
        "www." + target.domain,
        "fuzzadd1.test",
        "fzp1.test",
        target.other_domain,
        target.domain.upper() + ".",
        "xn--80ak6aa92e.com",
        "ｆuzzcp1.test",
        "*.fuzzcp1.test",
        "127.0.0.1",
        "../../../etc/passwd",
        "rsa:2048",
        "ecdsa:p-384",
        "dsa:1024",
        "1",
        "0",
        "true",
        "a" * 300,
    ]
    markup = st.sampled_from(MARKUP) | st.builds(
        lambda a, b: f"{a}<hx{b}>{a}",
        st.text(max_size=8),
        st.text(string.ascii_lowercase, min_size=1, max_size=6),
    )
    return st.sampled_from(known) | markup | st.text(max_size=40)


@st.composite
def requests(draw: st.DrawFn, target: Target) -> dict[str, Any]:
    field = st.sampled_from(FIELDS) | st.text(max_size=12)
    pairs = st.lists(st.tuples(field, values(target)), max_size=6)
    method = draw(
        st.sampled_from(["GET", "POST", "POST", "POST", "HEAD"])
        if draw(st.integers(0, 9))
        else st.sampled_from(["PUT", "DELETE", "OPTIONS", "get", "pOsT"])
        | st.text(string.ascii_letters, min_size=1, max_size=8)
    )
    query_pairs = draw(pairs)
    # Most requests name an action and a website, so the views behind the router are reached.
    routed = st.tuples(
        st.sampled_from(ACTIONS), st.sampled_from([target.domain, target.other_domain, "x.test"])
    )
    if draw(st.booleans()):
        action, site = draw(routed)
        query_pairs[:0] = [("action", action), ("vhost", site)]
    query = draw(st.just(urlencode(query_pairs)) | st.text(max_size=60))
    # A quarter of the requests are well-formed POSTs of the page's own forms, with tampered
    # values: they get past the router and the CSRF check into the views and the issuer.
    formed = draw(st.integers(0, 3)) == 0
    if formed:
        method = "POST"
    kind = draw(st.sampled_from(["form", "json"] if formed else ["form", "json", "raw", "none"]))
    good = target.csrf
    csrf = draw(st.sampled_from([good, good, good, "", "0" * 64, good[:-1] + "x"]))
    body_pairs = draw(pairs)
    names = st.sampled_from([target.domain, "www." + target.domain]) | values(target)
    if formed or draw(st.booleans()):
        action = draw(st.sampled_from(["issue", "reinstall", "remove", "settings", "x"]))
        site = draw(routed)[1]
        body_pairs[:0] = [("action", action), ("vhost", site), ("name", draw(names))]
    if formed or draw(st.booleans()):
        body_pairs.append(("csrf_token", csrf))
    json_value: Any = {}
    if kind == "json":
        scalars = st.none() | st.booleans() | st.integers() | st.floats() | values(target)
        json_value = draw(
            st.dictionaries(
                field, st.recursive(scalars, lambda c: st.lists(c, max_size=3)), max_size=6
            )
            | st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(field, c))
        )
        if formed:
            json_value = {
                **(json_value if isinstance(json_value, dict) else {}),
                **dict(body_pairs),
            }
        body = json.dumps(json_value).encode()
        ctype = "application/json"
    elif kind == "form":
        body, ctype = (
            urlencode(body_pairs, doseq=True).encode(),
            "application/x-www-form-urlencoded",
        )
    elif kind == "raw":
        body = draw(st.binary(max_size=200))
        ctype = draw(st.sampled_from(["application/json", "text/plain", ""]) | st.text(max_size=20))
    else:
        body, ctype = b"", ""
    length = draw(
        st.sampled_from([str(len(body)), str(len(body)), "", "-1", "abc", "99999999", "0"])
        | st.integers(-5, 10_000).map(str)
    )
    accept = draw(
        st.sampled_from(["text/html", "application/json", "*/*", ""]) | st.text(max_size=20)
    )
    extra = draw(
        st.dictionaries(
            st.sampled_from(FIELDS).map(lambda f: "HTTP_X_" + f.upper()), values(target), max_size=2
        )
    )
    return {
        "method": method,
        "query": query,
        "body": body,
        "ctype": ctype,
        "length": length,
        "accept": accept,
        "extra": extra,
        "csrf_header": draw(st.sampled_from(["", csrf])),
        "sent": [v for _, v in query_pairs + body_pairs] + list(extra.values()) + [query],
        "json": json_value,
    }


def call(target: Target, req: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req["method"],
        "QUERY_STRING": req["query"],
        "SCRIPT_NAME": SCRIPT,
        "PATH_INFO": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "2083",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "cp_security_token": SESSION,
        "REMOTE_USER": "fuzzcp1u",
        "HTTP_ACCEPT": req["accept"],
        "CONTENT_TYPE": req["ctype"],
        "CONTENT_LENGTH": req["length"],
        "HTTP_X_CSRF_TOKEN": req["csrf_header"],
        "wsgi.input": io.BytesIO(req["body"]),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "https",
        "wsgi.version": (1, 0),
        **req["extra"],
    }
    seen: list[tuple[int, dict[str, str]]] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.append((int(status.split()[0]), dict(headers)))

    body = b"".join(target.app(environ, start_response))
    assert len(seen) == 1, "start_response is called exactly once"
    return seen[0][0], seen[0][1], body


def markup_in(sent: list[Any]) -> list[str]:
    """Strings the request carried that would be live markup if echoed raw into HTML."""
    out = []
    for value in sent:
        if isinstance(value, str) and "<hx" in value:
            out.append(value[value.index("<hx") :][:12])
        if isinstance(value, str) and '" hx-attr=' in value:
            out.append('" hx-attr=')
    return out


def json_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in json_strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *json_strings(v)]]
    return []


def check_answer(target: Target, req: dict[str, Any], reached_before: int) -> None:
    status, headers, body = call(target, req)
    target.statuses[status] = target.statuses.get(status, 0) + 1
    text = body.decode("utf-8")
    reached = len(target.issuer_reached) > reached_before
    assert status in (200, 303) or 400 <= status < 500 or (status == 502 and reached), (
        status,
        text[:500],
    )
    assert "Traceback" not in text and 'File "' not in text
    ctype = headers["Content-Type"]
    if "application/json" in req["accept"].lower():
        assert ctype.startswith("application/json")
        reply = json.loads(text)
        assert reply["success"] is (status == 200)
        return
    if status == 303:
        assert headers["Location"].startswith(SESSION + SCRIPT)
        return
    if ctype.startswith("application/json"):  # the progress poll answers JSON to anyone
        json.loads(text)
        return
    assert ctype.startswith("text/html"), ctype
    for raw in markup_in(req["sent"] + json_strings(req["json"])):
        target.markup_checked += 1
        assert raw not in text, f"{raw!r} came back unescaped"


def test_the_cpanel_page_answers_any_request_cleanly(target: Target) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(target))
    def run(req: dict[str, Any]) -> None:
        check_answer(target, req, len(target.issuer_reached))

    run()
    # The run reached every kind of answer, so the properties were checked where they matter.
    assert {200, 303, 400, 403, 404, 405} <= set(target.statuses), target.statuses
    assert target.markup_checked > 100 and target.issuer_reached


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/json", b"[" * 100_000 + b"]" * 100_000),
        ("application/json", b'{"action": "issue", "vhost": ' + b"[" * 50_000 + b"]}"),
        ("application/json", b"\xff\xfe{}"),
        ("application/json", b'{"action": 1' + b"0" * 5000 + b"}"),
        ("application/x-www-form-urlencoded", b"&".join([b"a=1"] * 5000)),
        ("application/x-www-form-urlencoded", b"x" * (1024 * 1024 + 1)),
    ],
    ids=["deep-json", "deep-json-value", "bad-utf8", "huge-number", "many-fields", "too-large"],
)
def test_pathological_bodies_are_a_clean_400(target: Target, ctype: str, body: bytes) -> None:
    """What random generation rarely reaches: nesting deeper than Python's recursion limit,
    numbers longer than int() accepts, a thousand-plus fields, a body over the size limit."""
    req = {
        "method": "POST",
        "query": "",
        "body": body,
        "ctype": ctype,
        "length": str(len(body)),
        "accept": "application/json",
        "extra": {},
        "csrf_header": target.csrf,
        "sent": [],
        "json": {},
    }
    status, _headers, text = call(target, req)
    assert 400 <= status < 500, text[:300]
    assert json.loads(text)["success"] is False
