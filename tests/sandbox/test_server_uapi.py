"""UAPI over cpsrvd's HTTPS port answers exactly what the UAPI functions answer."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests
from requests.adapters import HTTPAdapter

from cpanel_sandbox import uapi
from tests.fixtures.sandbox import RunningSandbox


@pytest.fixture(scope="module")
def user(sandbox: RunningSandbox) -> str:
    sandbox.add_user("uapione", "uapione.test", addons=("uapiaddon.test",), parked=("uapi.test",))
    return "uapione"


@pytest.mark.parametrize(
    ("module", "func", "args"),
    [
        ("DomainInfo", "list_domains", {}),
        ("DomainInfo", "domains_data", {"format": ["hash"]}),
        ("Variables", "get_user_information", {"name": ["home"]}),
        ("NoSuchModule", "nothing", {}),
    ],
)
def test_https_answers_as_dispatch(
    sandbox: RunningSandbox, user: str, module: str, func: str, args: dict[str, list[str]]
) -> None:
    session = sandbox.login(user)
    reply = sandbox.uapi(session, module, func, args)
    assert reply.status == 200
    assert reply.json() == uapi.dispatch(sandbox.root, user, module, func, args)


def test_get_query_and_post_body_are_merged(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login(user)
    query = urlencode({"name": "home"})
    reply = sandbox.request(
        sandbox.cpanel_port,
        "POST",
        f"{session.token}/execute/Variables/get_user_information?{query}",
        body=urlencode({"name-1": "user"}).encode(),
        headers={"Cookie": session.cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    expected = uapi.dispatch(
        sandbox.root,
        user,
        "Variables",
        "get_user_information",
        {"name": ["home"], "name-1": ["user"]},
    )
    assert reply.json() == expected


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, sandbox: RunningSandbox) -> None:
        self._ctx = sandbox.tls_context()
        super().__init__()

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        kwargs["ssl_context"] = self._ctx
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]


def test_requests_keeps_the_cookie_across_the_login_redirect(
    sandbox: RunningSandbox, user: str
) -> None:
    """What a plugin using requests does: GET the login URL, then call with its cookie jar."""
    http = requests.Session()
    http.mount("https://", _PinnedAdapter(sandbox))
    login = http.get(sandbox.login_url(user), allow_redirects=False, timeout=10)
    assert login.status_code == 302
    assert "cpsession" in login.cookies
    token = login.headers["Location"].split("/")[1]
    reply = http.get(
        f"https://127.0.0.1:{sandbox.cpanel_port}/{token}/execute/DomainInfo/list_domains",
        timeout=10,
    )
    assert reply.status_code == 200
    assert reply.json()["data"]["main_domain"] == "uapione.test"
