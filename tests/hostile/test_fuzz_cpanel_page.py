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
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from letsencrypt_cpanel.config import Secrets, load_settings
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


@pytest.fixture(scope="module")
def target(sandbox: RunningSandbox, lecp: Any, tmp_path_factory: Any) -> Iterator[FuzzTarget]:
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
        transport = Replaying(api.transport, READ_ONLY)
        app = create_app(
            page_settings,
            lambda env: UserAPI(transport),
            templates=templates_dir(),
            home_finder=lambda s, env: home,
            issuer_factory=issuer,
        )
        domain, other = "fuzzcp1.test", "fuzzcp2.test"
        yield FuzzTarget(
            app=app,
            environ={
                "SCRIPT_NAME": SCRIPT,
                "cp_security_token": SESSION,
                "REMOTE_USER": "fuzzcp1u",
            },
            redirect_prefix=SESSION + SCRIPT,
            fields=FIELDS,
            get_actions=ACTIONS,
            post_actions=["issue", "reinstall", "remove", "settings"],
            known_values=[
                *ACTIONS,
                *API_FUNCS,
                domain,
                "www." + domain,
                "fuzzadd1.test",
                "fzp1.test",
                other,
                domain.upper() + ".",
                "xn--80ak6aa92e.com",
                "\uff46uzzcp1.test",
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
            ],
            sites=[domain, other, "x.test"],
            good_names=[domain, "www." + domain],
            csrf=CsrfGuard(NvdataFolder(home), SESSION).token(),
            issuer_reached=reached,
        )


def test_the_cpanel_page_answers_any_request_cleanly(target: FuzzTarget) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(target))
    def run(req: dict[str, Any]) -> None:
        check_answer(target, req)

    run()
    # The run reached every kind of answer, so the properties were checked where they matter.
    assert {200, 303, 400, 403, 404, 405} <= set(target.statuses), target.statuses
    assert target.markup_checked > 100 and target.issuer_reached


@pytest.mark.parametrize(("ctype", "body"), PATHOLOGICAL, ids=PATHOLOGICAL_IDS)
def test_pathological_bodies_are_a_clean_400(target: FuzzTarget, ctype: str, body: bytes) -> None:
    """What random generation rarely reaches: nesting deeper than Python's recursion limit,
    numbers longer than int() accepts, a thousand-plus fields, a body over the size limit."""
    status, _headers, text = call(target, plain_post(target, body, ctype))
    assert 400 <= status < 500, text[:300]
    assert json.loads(text)["success"] is False
