"""Property-based fuzzing of the WHM page's WSGI app, in process, as root, a reseller with `all`,
a reseller without it, a cPanel user and strangers.

A sandbox of its own (the fuzzing saves options at random; the session sandbox's settings must
not change), the plugin configured against a CA that does not listen. Root's WHM API is real
(pinned TLS to the sandbox); read-only answers are replayed after the first real one.

Every answer has the properties of `wsgi_fuzz.check_answer`; in addition, anybody but root and
resellers gets 403 and sees no account; a reseller without `all` gets 403 for options and
actions and never sees an account it does not own."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.cpanel.whm import WhmAPI
from letsencrypt_cpanel.web.rendering import templates_dir
from letsencrypt_cpanel.web.responses import BadRequest, Request
from letsencrypt_cpanel.web.whm import _FULL_ONLY, create_app, root_whm_api
from letsencrypt_cpanel.web.whm_access import WhmCsrf
from tests.conftest import free_port
from tests.fixtures.lecp import configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import make_sandbox_root, start_sandbox
from tests.hostile.wsgi_fuzz import (
    EXAMPLES,
    PATHOLOGICAL,
    PATHOLOGICAL_IDS,
    FuzzTarget,
    Replaying,
    call,
    check_answer,
    plain_post,
    requests,
)
from tests.whm.pages import add_reseller, set_owner

SESSION = "/cpsess5555555555"
SCRIPT = "/cgi/letsencrypt-cpanel/letsencrypt.live.cgi"
READ_ONLY = {
    "listaccts",
    "accountsummary",
    "fetch_ssl_vhosts",
    "fetch_service_ssl_components",
    "get_domain_info",
    "get_autossl_providers",
    "gethostname",
}
FIELDS = [
    "action",
    "api",
    "user",
    "vhost",
    "force",
    "csrf_token",
    "acme_directory",
    "default_key_type",
    "renewal_days",
    "send_success_mail",
    "service_cert",
    "autossl",
    "smtp_host",
    "mail_from",
]
CA_ACTIONS = ("renew", "autossl", "service_cert")
GET_ACTIONS = ["", "home", "certificates", "options", "actions", "nope"]
POST_ACTIONS = ["save_options", "renew", "autossl", "service_cert", "exclude_cpanel_autossl"]
OWN, OTHERS = "whmfz1.test", "whmfz2.test"
USERS = ["root", "root", "root", "boss", "resl", "resl", "whmfz1u", "", "nobody", "root\0"]


@pytest.fixture(scope="module")
def target(pebble: PebbleInstance) -> Iterator[FuzzTarget]:
    root = make_sandbox_root()
    sandbox = start_sandbox(root, http_port=free_port())
    try:
        lecp = configure(sandbox, pebble)
        lecp.ok("config", "set", "acme_directory", "https://127.0.0.1:9/dir")
        sandbox.add_user("whmfz1u", OWN)
        sandbox.add_user("whmfz2u", OTHERS)
        sandbox.add_user("resl", "resl.test")
        add_reseller(sandbox, "boss", ["all"])
        add_reseller(sandbox, "resl", ["list-accts", "create-acct"])
        set_owner(sandbox, "whmfz1u", "resl")
        page_settings = load_settings({"LECP_ROOT": str(root)})
        whm = Replaying(root_whm_api(page_settings).transport, READ_ONLY)
        app = create_app(page_settings, lambda s: WhmAPI(whm), templates=templates_dir())
        yield FuzzTarget(
            app=app,
            environ={"SCRIPT_NAME": SCRIPT, "cp_security_token": SESSION, "REMOTE_USER": "root"},
            redirect_prefix=SESSION + SCRIPT,
            fields=FIELDS,
            get_actions=GET_ACTIONS,
            post_actions=POST_ACTIONS,
            known_values=[
                *GET_ACTIONS,
                *POST_ACTIONS,
                "whmfz1u",
                "whmfz2u",
                "resl",
                "root",
                OWN,
                OTHERS,
                "https://127.0.0.1:9/dir",
                "javascript:alert(1)",
                "rsa:2048",
                "dsa:1024",
                "-1",
                "9999",
                "1",
                "0",
                "../../etc/shadow",
            ],
            sites=["whmfz1u", "whmfz2u", "root", "x"],
            good_names=[OWN],
            csrf=WhmCsrf(page_settings.state_dir, "root", SESSION).token(),
        )
    finally:
        sandbox.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_whm_page_answers_anyone_cleanly_and_only_within_their_rights(
    target: FuzzTarget,
) -> None:
    checked = {"stranger": 0, "limited": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(target), st.sampled_from(USERS))
    def run(req: dict[str, Any], user: str) -> None:
        req["environ"] = {"REMOTE_USER": user}
        # These ask the CA (which does not listen): a 502 is their right answer.
        reaches_ca = user in ("root", "boss") and _action(req) in CA_ACTIONS
        status, text = check_answer(target, req, reached=reaches_ca)
        sent = " ".join(str(v) for v in req["sent"]) + json.dumps(req["json"])
        if user not in ("root", "boss", "resl"):
            assert status == 403, (user, status, text[:300])
            checked["stranger"] += 1
            assert OWN not in text or OWN in sent
        elif user == "resl":
            action = _action(req)
            if action in _FULL_ONLY:
                assert status == 403, (action, status, text[:300])
                checked["limited"] += 1
            assert OTHERS not in text or OTHERS in sent, text[:2000]

    run()
    assert {200, 303, 400, 403, 404, 405} <= set(target.statuses), target.statuses
    assert target.markup_checked > 100
    assert checked["stranger"] > 100 and checked["limited"] > 20, checked


def _action(req: dict[str, Any]) -> str:
    """The action the app routes on, as it reads it (JSON body, form, then query)."""
    environ = {
        "REQUEST_METHOD": req["method"],
        "QUERY_STRING": req["query"],
        "CONTENT_TYPE": req["ctype"],
        "CONTENT_LENGTH": req["length"],
        "wsgi.input": io.BytesIO(req["body"]),
    }
    try:
        request = Request.parse(environ)
    except BadRequest:
        return ""
    return request.value("action") or request.value("api")


@pytest.mark.parametrize(("ctype", "body"), PATHOLOGICAL, ids=PATHOLOGICAL_IDS)
def test_pathological_bodies_are_a_clean_400(target: FuzzTarget, ctype: str, body: bytes) -> None:
    status, _headers, text = call(target, plain_post(target, body, ctype))
    assert 400 <= status < 500, text[:300]
    assert json.loads(text)["success"] is False
