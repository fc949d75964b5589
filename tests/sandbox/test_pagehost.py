"""The page host runs plugin CGIs as cpsrvd does: as the user, with cpsrvd's environment and a
LiveAPI socket; WHM pages as root."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest

from cpanel_sandbox import accounts, pagehost
from tests.fixtures.sandbox import PROBE_CGI, RunningSandbox

CPANEL_PAGE = "letsencrypt-cpanel/letsencrypt.live.cgi"
WHM_PAGE = "letsencrypt-cpanel/letsencrypt.live.cgi"


@pytest.fixture(scope="module")
def user(sandbox: RunningSandbox) -> str:
    sandbox.add_user("pageone", "pageone.test", addons=("pageaddon.test",))
    sandbox.add_user("pagetwo", "pagetwo.test")
    sandbox.install_cgi("cpanel", CPANEL_PAGE, PROBE_CGI)
    sandbox.install_cgi("whm", WHM_PAGE, PROBE_CGI)
    return "pageone"


def _run_cpanel_page(
    sandbox: RunningSandbox, user: str, query: str = "", body: bytes | None = None
) -> dict:
    session = sandbox.login(user)
    headers = {"Cookie": session.cookie, "Accept": "text/html"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    reply = sandbox.request(
        sandbox.cpanel_port,
        "POST" if body is not None else "GET",
        f"{session.token}/frontend/jupiter/{CPANEL_PAGE}{query}",
        body=body,
        headers=headers,
    )
    assert reply.status == 200, reply.body[:500]
    assert reply.header("X-Probe") == "1"
    return json.loads(reply.body)


def test_cpanel_page_runs_as_the_user_with_cpsrvd_environment(
    sandbox: RunningSandbox, user: str
) -> None:
    entry = accounts.passwd_entry(sandbox.root, user)
    assert entry is not None and entry.uid != 0
    out = _run_cpanel_page(sandbox, user, "?x=1", body=b"a=b")
    assert (out["uid"], out["euid"], out["gid"]) == (entry.uid, entry.uid, entry.gid)
    assert out["groups"] in ([], [entry.gid])
    env = out["env"]
    assert env["REMOTE_USER"] == user
    assert env["cp_security_token"].startswith("/cpsess")
    assert env["CPANEL"] == "1"
    assert env["HTTPS"] == "on"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["QUERY_STRING"] == "x=1"
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "3" and out["stdin"] == "a=b"
    assert env["SCRIPT_FILENAME"].endswith("/usr/local/cpanel/base/frontend/jupiter/" + CPANEL_PAGE)
    assert env["SCRIPT_NAME"] == "/frontend/jupiter/" + CPANEL_PAGE
    assert "cpsession=" in env["HTTP_COOKIE"]
    assert env["HTTP_ACCEPT"] == "text/html"
    assert env["SERVER_PORT"] == str(sandbox.cpanel_port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HOME"] == str(entry.home)
    assert env["LECP_ROOT"] == str(sandbox.root)
    assert "HTTP_AUTHORIZATION" not in env


def test_liveapi_answers_as_the_session_user(sandbox: RunningSandbox, user: str) -> None:
    out = _run_cpanel_page(sandbox, user, "?module=DomainInfo&func=list_domains")
    live = out["live"]
    assert live["hello"].find('<cpanelresult>{"data":{"result":"json"}}') >= 0
    reply = live["json"]
    assert reply["apiversion"] == 3
    assert (reply["module"], reply["func"]) == ("DomainInfo", "list_domains")
    assert reply["result"]["status"] == 1
    assert reply["result"]["data"]["main_domain"] == "pageone.test"
    assert reply["result"]["data"]["addon_domains"] == ["pageaddon.test"]
    socket_path = Path(out["env"]["CPANEL_CONNECT_SOCKET"])
    assert not socket_path.exists()  # removed once the page ended
    folder = socket_path.parent.stat()
    assert (folder.st_uid, folder.st_mode & 0o777) == (0, 0o711)


def test_liveapi_ignores_a_claimed_identity(sandbox: RunningSandbox, user: str) -> None:
    args = quote(json.dumps({"user": "pagetwo", "name": "user"}))
    out = _run_cpanel_page(
        sandbox, user, f"?module=Variables&func=get_user_information&args={args}"
    )
    result = out["live"]["json"]["result"]
    assert result["status"] == 1, result["errors"]
    assert result["data"]["user"] == user


def test_whm_page_runs_as_root_with_remote_user(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login("root", "whostmgrd")
    reply = sandbox.request(
        sandbox.whm_port,
        "GET",
        f"{session.token}/cgi/{WHM_PAGE}?a=1",
        headers={"Cookie": session.cookie},
    )
    assert reply.status == 200, reply.body[:500]
    out = json.loads(reply.body)
    assert out["uid"] == 0
    env = out["env"]
    assert env["REMOTE_USER"] == "root"
    assert env["SCRIPT_FILENAME"].endswith("/usr/local/cpanel/whostmgr/docroot/cgi/" + WHM_PAGE)
    assert env["SCRIPT_NAME"] == "/cgi/" + WHM_PAGE
    assert env["cp_security_token"] == session.token
    assert env["LECP_ROOT"] == str(sandbox.root)


def test_page_needs_a_session(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login(user)
    reply = sandbox.request(
        sandbox.cpanel_port, "GET", f"{session.token}/frontend/jupiter/{CPANEL_PAGE}"
    )
    assert reply.status == 401


@pytest.mark.parametrize(("owner", "mode"), [(0, 0o775), (0, 0o700), (1, 0o755)])
def test_page_not_root_owned_0755_is_refused(
    sandbox: RunningSandbox, user: str, owner: int, mode: int
) -> None:
    path = sandbox.install_cgi("cpanel", "badperm/page.live.cgi", PROBE_CGI)
    os.chown(path, owner, 0)
    path.chmod(mode)
    session = sandbox.login(user)
    reply = sandbox.request(
        sandbox.cpanel_port,
        "GET",
        f"{session.token}/frontend/jupiter/badperm/page.live.cgi",
        headers={"Cookie": session.cookie},
    )
    assert reply.status == 403
    assert b"X-Probe" not in reply.body


def test_cgi_status_and_location_are_relayed(sandbox: RunningSandbox, user: str) -> None:
    sandbox.install_cgi(
        "cpanel",
        "redir/go.live.cgi",
        "#!/bin/sh\nprintf 'Status: 303 See Other\\r\\nLocation: /elsewhere\\r\\n"
        "Set-Cookie: x=1\\r\\n\\r\\n'\n",
    )
    session = sandbox.login(user)
    reply = sandbox.request(
        sandbox.cpanel_port,
        "GET",
        f"{session.token}/frontend/jupiter/redir/go.live.cgi",
        headers={"Cookie": session.cookie},
    )
    assert reply.status == 303
    assert reply.header("Location") == "/elsewhere"
    assert reply.header("Set-Cookie") == "x=1"


def test_time_limit_kills_the_page(sandbox: RunningSandbox, user: str) -> None:
    script = sandbox.install_cgi("cpanel", "slow/slow.cgi", "#!/bin/sh\nsleep 30\n")
    request = pagehost.CgiRequest(
        script=script,
        script_name="/frontend/jupiter/slow/slow.cgi",
        request_uri="/cpsess1/frontend/jupiter/slow/slow.cgi",
        method="GET",
        query="",
        headers=[],
        body=b"",
        remote_user=user,
        security_token="/cpsess1",
        server_name="127.0.0.1",
        server_port=2083,
        remote_addr="127.0.0.1",
        remote_port=1,
    )
    reply = pagehost.run_cgi(sandbox.root, request, liveapi_dir=None, time_limit=1)
    assert reply.status == 504


@pytest.mark.parametrize(
    ("output", "status", "headers", "body"),
    [
        (b"Content-Type: text/plain\n\nhi", 200, [("Content-Type", "text/plain")], b"hi"),
        (b"Location: /x\r\n\r\n", 302, [("Location", "/x")], b""),
        (b"Status: 404 Not Found\r\nContent-Type: text/html\r\n\r\nno", 404, None, b"no"),
        (b"no headers at all", 500, None, None),
        (b"Bad Header Line\n\n", 500, None, None),
    ],
)
def test_parse_cgi_output(
    output: bytes, status: int, headers: list[tuple[str, str]] | None, body: bytes | None
) -> None:
    reply = pagehost.parse_cgi_output(output)
    assert reply.status == status
    if headers is not None:
        assert reply.headers == headers
    if body is not None:
        assert reply.body == body
