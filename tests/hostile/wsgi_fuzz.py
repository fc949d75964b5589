"""What the fuzzing of both WSGI apps shares: hostile requests as a hypothesis strategy, a way to
call an app in process, and the properties every answer must have.

A request is a dict: method, query string, body and its Content-Type and Content-Length (often
lying), Accept, a CSRF header, extra `HTTP_X_*` headers, and what it carried (`sent`, `json`) so
the answer can be searched for it. A quarter of the requests are well-formed POSTs of the app's
own forms with tampered values, so the views behind the router and the CSRF check are reached.
"""

from __future__ import annotations

import io
import json
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

EXAMPLES = 2000
MARKUP = ["<hx-mark>", '"><hx-img src=x>', "'><hx-script>", "</textarea><hx-t>", 'x" hx-attr="1']


class Replaying:
    """A real cPanel or WHM transport whose read-only calls (`read_only`, "Module::func" or a WHM
    function name) are answered again from their first real reply: 2,000 requests in seconds,
    every answer still cPanel's (the sandbox's)."""

    def __init__(self, inner: Any, read_only: Collection[str]) -> None:
        self.inner = inner
        self.read_only = read_only
        self.seen: dict[str, dict[str, Any]] = {}

    def _answer(self, name: str, args: Any, ask: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if name not in self.read_only:
            return dict(ask())
        key = name + json.dumps(args, sort_keys=True, default=str)
        if key not in self.seen:
            self.seen[key] = ask()
        return dict(json.loads(json.dumps(self.seen[key])))

    def call_uapi(self, module: str, func: str, args: Any) -> dict[str, Any]:
        return self._answer(
            f"{module}::{func}", args, lambda: self.inner.call_uapi(module, func, args)
        )

    def call_whm(self, func: str, args: Any) -> dict[str, Any]:
        return self._answer(func, args, lambda: self.inner.call_whm(func, args))


@dataclass
class FuzzTarget:
    """An app and what its requests are made of."""

    app: Any
    environ: Mapping[str, Any]  # fixed by the server (cpsrvd): script, session, user...
    redirect_prefix: str  # every Location must start with it
    fields: Sequence[str]
    get_actions: Sequence[str]
    post_actions: Sequence[str]
    known_values: Sequence[str]
    sites: Sequence[str]
    good_names: Sequence[str]
    csrf: str
    issuer_reached: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    markup_checked: int = 0


def values(target: FuzzTarget) -> st.SearchStrategy[str]:
    markup = st.sampled_from(MARKUP) | st.builds(
        lambda a, b: f"{a}<hx{b}>{a}",
        st.text(max_size=8),
        st.text(string.ascii_lowercase, min_size=1, max_size=6),
    )
    return st.sampled_from(list(target.known_values)) | markup | st.text(max_size=40)


def requests(target: FuzzTarget) -> st.SearchStrategy[dict[str, Any]]:
    """Hostile requests for `target`. The strategies are built once here: building them in
    every draw costs more than calling the app."""
    text_values = values(target)
    name = st.sampled_from(list(target.fields)) | st.text(max_size=12)
    pairs = st.lists(st.tuples(name, text_values), max_size=6)
    usual_method = st.sampled_from(["GET", "POST", "POST", "POST", "HEAD"])
    odd_method = st.sampled_from(["PUT", "DELETE", "OPTIONS", "get", "pOsT"]) | st.text(
        string.ascii_letters, min_size=1, max_size=8
    )
    site = st.sampled_from(list(target.sites))
    get_actions = st.sampled_from(list(target.get_actions))
    post_actions = st.sampled_from([*target.post_actions, "x"])
    raw_query = st.text(max_size=60)
    good = target.csrf
    csrfs = st.sampled_from([good, good, good, "", "0" * 64, good[:-1] + "x"])
    names = st.sampled_from(list(target.good_names)) | text_values
    forces = st.sampled_from(["1", "0", ""])
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | text_values
    nested = st.recursive(scalars, lambda c: st.lists(c, max_size=3))
    json_values = st.dictionaries(name, nested, max_size=6) | st.recursive(
        scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(name, c)
    )
    raw_body = st.binary(max_size=200)
    raw_ctype = st.sampled_from(["application/json", "text/plain", ""]) | st.text(max_size=20)
    lengths = st.sampled_from(["", "-1", "abc", "99999999", "0"]) | st.integers(-5, 10_000).map(str)
    accepts = st.sampled_from(["text/html", "application/json", "*/*", ""]) | st.text(max_size=20)
    extras = st.dictionaries(
        st.sampled_from(list(target.fields)).map(lambda f: "HTTP_X_" + f.upper()),
        text_values,
        max_size=2,
    )

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        method = draw(usual_method if draw(st.integers(0, 9)) else odd_method)
        formed = draw(st.integers(0, 3)) == 0
        if formed:
            method = "POST"
        query_pairs = draw(pairs)
        if draw(st.booleans()):
            query_pairs[:0] = [("action", draw(get_actions)), ("vhost", draw(site))]
        query = urlencode(query_pairs) if draw(st.booleans()) else draw(raw_query)
        csrf = draw(csrfs)
        body_pairs = draw(pairs)
        if formed or draw(st.booleans()):
            body_pairs[:0] = [("action", draw(post_actions)), ("vhost", draw(site))]
            body_pairs[2:2] = [("name", draw(names)), ("user", draw(site)), ("force", draw(forces))]
        if formed or draw(st.booleans()):
            body_pairs.append(("csrf_token", csrf))
        kinds = ["form", "json"] if formed else ["form", "json", "raw", "none"]
        kind = draw(st.sampled_from(kinds))
        json_value: Any = {}
        if kind == "json":
            json_value = draw(json_values)
            if formed:
                base = json_value if isinstance(json_value, dict) else {}
                json_value = {**base, **dict(body_pairs)}
            body, ctype = json.dumps(json_value).encode(), "application/json"
        elif kind == "form":
            body = urlencode(body_pairs, doseq=True).encode()
            ctype = "application/x-www-form-urlencoded"
        elif kind == "raw":
            body, ctype = draw(raw_body), draw(raw_ctype)
        else:
            body, ctype = b"", ""
        length = str(len(body)) if draw(st.booleans()) else draw(lengths)
        extra = draw(extras)
        return {
            "method": method,
            "query": query,
            "body": body,
            "ctype": ctype,
            "length": length,
            "accept": draw(accepts),
            "extra": extra,
            "csrf_header": draw(st.sampled_from(["", csrf])),
            "sent": [v for _, v in query_pairs + body_pairs] + list(extra.values()) + [query],
            "json": json_value,
            "environ": {},
        }

    return build()


def call(target: FuzzTarget, req: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "PATH_INFO": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "2083",
        "SERVER_PROTOCOL": "HTTP/1.1",
        **target.environ,
        "REQUEST_METHOD": req["method"],
        "QUERY_STRING": req["query"],
        "HTTP_ACCEPT": req["accept"],
        "CONTENT_TYPE": req["ctype"],
        "CONTENT_LENGTH": req["length"],
        "HTTP_X_CSRF_TOKEN": req["csrf_header"],
        "wsgi.input": io.BytesIO(req["body"]),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "https",
        "wsgi.version": (1, 0),
        **req["extra"],
        **req["environ"],
    }
    seen: list[tuple[int, dict[str, str]]] = []

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.append((int(status.split()[0]), dict(headers)))

    body = b"".join(target.app(environ, start_response))
    assert len(seen) == 1, "start_response is called exactly once"
    return seen[0][0], seen[0][1], body


def markup_in(sent: list[Any]) -> list[str]:
    """Pieces of what the request carried that would be live markup if echoed raw into HTML."""
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


def check_answer(
    target: FuzzTarget, req: Mapping[str, Any], *, reached: bool = False
) -> tuple[int, str]:
    """Call the app; assert every property of a clean answer; return (status, body text).
    A 502 is allowed only when the request reached the issuer (`reached`, or counted by the
    target's issuer factory)."""
    reached_before = len(target.issuer_reached)
    status, headers, body = call(target, req)
    target.statuses[status] = target.statuses.get(status, 0) + 1
    text = body.decode("utf-8")
    reached = reached or len(target.issuer_reached) > reached_before
    assert status in (200, 303) or 400 <= status < 500 or (status == 502 and reached), (
        status,
        text[:500],
    )
    assert "Traceback" not in text and 'File "' not in text
    assert headers["X-Content-Type-Options"] == "nosniff"
    ctype = headers["Content-Type"]
    if "application/json" in req["accept"].lower():
        assert ctype.startswith("application/json")
        assert json.loads(text)["success"] is (status == 200)
        return status, text
    if status == 303:
        assert headers["Location"].startswith(target.redirect_prefix), headers["Location"]
        return status, text
    if ctype.startswith("application/json"):  # a progress poll answers JSON to anyone
        json.loads(text)
        return status, text
    assert ctype.startswith("text/html"), ctype
    for raw in markup_in(req["sent"] + json_strings(req["json"])):
        target.markup_checked += 1
        assert raw not in text, f"{raw!r} came back unescaped"
    return status, text


def plain_post(target: FuzzTarget, body: bytes, ctype: str) -> dict[str, Any]:
    """A hand-made POST (for the pathological bodies random generation rarely reaches)."""
    return {
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
        "environ": {},
    }


PATHOLOGICAL = [
    ("application/json", b"[" * 100_000 + b"]" * 100_000),
    ("application/json", b'{"action": "issue", "vhost": ' + b"[" * 50_000 + b"]}"),
    ("application/json", b"\xff\xfe{}"),
    ("application/json", b'{"action": 1' + b"0" * 5000 + b"}"),
    ("application/x-www-form-urlencoded", b"&".join([b"a=1"] * 5000)),
    ("application/x-www-form-urlencoded", b"x" * (1024 * 1024 + 1)),
]
PATHOLOGICAL_IDS = [
    "deep-json",
    "deep-json-value",
    "bad-utf8",
    "huge-number",
    "many-fields",
    "too-large",
]
