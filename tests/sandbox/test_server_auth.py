"""cpsrvd's gates: session cookies and cPanel user API tokens on the cPanel port, API tokens and
sessions on the WHM port."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cpanel_sandbox import layout
from letsencrypt_cpanel.cpanel.envelope import check_whm_envelope
from letsencrypt_cpanel.errors import CpanelAPIError
from tests.fixtures.sandbox import RunningSandbox

REPO = Path(__file__).resolve().parents[2]
SCOPE_ERROR = b"Token authentication allows access to UAPI or API 2 calls only."


@pytest.fixture(scope="module")
def users(sandbox: RunningSandbox) -> tuple[str, str]:
    sandbox.add_user("authone", "authone.test")
    sandbox.add_user("authtwo", "authtwo.test")
    return "authone", "authtwo"


def _is_html_refusal(reply_body: bytes) -> bool:
    return b"<html" in reply_body.lower() and not reply_body.lstrip().startswith(b"{")


def test_session_cookie_opens_uapi(sandbox: RunningSandbox, users: tuple[str, str]) -> None:
    session = sandbox.login(users[0])
    assert session.cookie.startswith("cpsession=")
    reply = sandbox.uapi(session, "DomainInfo", "list_domains", {})
    assert reply.status == 200
    assert reply.header(
        "Content-Type",
    ).startswith("application/json")
    assert reply.json()["data"]["main_domain"] == "authone.test"


def test_login_sets_httponly_secure_cookie_and_redirects(
    sandbox: RunningSandbox, users: tuple[str, str]
) -> None:
    url = sandbox.login_url(users[0])
    path = url.split(str(sandbox.cpanel_port), 1)[1]
    reply = sandbox.request(sandbox.cpanel_port, "GET", path)
    assert reply.status == 302
    cookie = reply.header("Set-Cookie") or ""
    assert cookie.startswith("cpsession=")
    assert "httponly" in cookie.lower() and "secure" in cookie.lower()
    assert (reply.header("Location") or "").startswith("/cpsess")
    # A login URL works once.
    assert sandbox.request(sandbox.cpanel_port, "GET", path).status == 401


def test_missing_cookie_is_refused_with_html_401(
    sandbox: RunningSandbox, users: tuple[str, str]
) -> None:
    session = sandbox.login(users[0])
    reply = sandbox.request(
        sandbox.cpanel_port, "GET", f"{session.token}/execute/DomainInfo/list_domains"
    )
    assert reply.status == 401
    assert _is_html_refusal(reply.body)


def test_another_sessions_cookie_is_refused(
    sandbox: RunningSandbox, users: tuple[str, str]
) -> None:
    mine = sandbox.login(users[0])
    theirs = sandbox.login(users[1])
    reply = sandbox.request(
        sandbox.cpanel_port,
        "GET",
        f"{mine.token}/execute/DomainInfo/list_domains",
        headers={"Cookie": theirs.cookie},
    )
    assert reply.status == 401
    assert _is_html_refusal(reply.body)


def test_bare_execute_without_credentials_is_refused(sandbox: RunningSandbox) -> None:
    reply = sandbox.request(sandbox.cpanel_port, "GET", "/execute/DomainInfo/list_domains")
    assert reply.status == 401
    assert _is_html_refusal(reply.body)


def test_bad_login_session_is_refused(sandbox: RunningSandbox) -> None:
    reply = sandbox.request(sandbox.cpanel_port, "GET", "/login/?session=nobody%3Anothing")
    assert reply.status == 401
    assert reply.header("Set-Cookie") is None


def test_logout_ends_the_session(sandbox: RunningSandbox, users: tuple[str, str]) -> None:
    session = sandbox.login(users[0])
    bye = sandbox.request(
        sandbox.cpanel_port, "GET", f"{session.token}/logout/", headers={"Cookie": session.cookie}
    )
    assert bye.status == 200
    assert sandbox.uapi(session, "DomainInfo", "list_domains", {}).status == 401


def test_whm_good_token_returns_the_envelope(sandbox: RunningSandbox) -> None:
    reply = sandbox.whm_api("gethostname")
    assert reply.status == 200
    data = reply.json()
    assert data["metadata"]["result"] == 1
    assert data["metadata"]["command"] == "gethostname"
    assert data["data"]["hostname"]


def test_whm_without_api_version_1_is_not_the_api_1_envelope(sandbox: RunningSandbox) -> None:
    # cpanel-api.md §1.5: the legacy API 0 format; a client that forgets the parameter must not
    # find an API 1 envelope (and the plugin's own client refuses what it gets).
    reply = sandbox.request(
        sandbox.whm_port,
        "GET",
        "/json-api/gethostname",
        headers={"Authorization": f"whm root:{sandbox.whm_token}"},
    )
    assert reply.status == 200 and "metadata" not in reply.json()
    with pytest.raises(CpanelAPIError):
        check_whm_envelope("gethostname", reply.json(), transport="whm-https")


def test_whm_bad_token_is_an_http_error(sandbox: RunningSandbox) -> None:
    reply = sandbox.whm_api("gethostname", token="WRONG" + sandbox.whm_token[5:])
    assert reply.status == 403
    assert _is_html_refusal(reply.body)


def test_whm_without_token_is_an_http_error(sandbox: RunningSandbox) -> None:
    reply = sandbox.request(sandbox.whm_port, "GET", "/json-api/gethostname?api.version=1")
    assert reply.status == 401
    assert _is_html_refusal(reply.body)


def test_whm_token_does_not_open_the_cpanel_port(sandbox: RunningSandbox) -> None:
    reply = sandbox.request(
        sandbox.cpanel_port,
        "GET",
        "/json-api/gethostname?api.version=1",
        headers={"Authorization": f"whm root:{sandbox.whm_token}"},
    )
    assert reply.status == 401


def test_whm_session_calls_json_api(sandbox: RunningSandbox) -> None:
    session = sandbox.login("root", "whostmgrd")
    assert session.cookie.startswith("whostmgrsession=")
    reply = sandbox.request(
        sandbox.whm_port,
        "GET",
        f"{session.token}/json-api/gethostname?api.version=1",
        headers={"Cookie": session.cookie},
    )
    assert reply.status == 200
    assert reply.json()["metadata"]["result"] == 1
    refused = sandbox.request(
        sandbox.whm_port, "GET", f"{session.token}/json-api/gethostname?api.version=1"
    )
    assert refused.status == 401


def test_cpanel_session_does_not_open_whm(sandbox: RunningSandbox, users: tuple[str, str]) -> None:
    session = sandbox.login(users[0])
    reply = sandbox.request(
        sandbox.whm_port,
        "GET",
        f"{session.token}/json-api/gethostname?api.version=1",
        headers={"Cookie": session.cookie.replace("cpsession=", "whostmgrsession=")},
    )
    assert reply.status == 401


def test_bare_logout_ends_the_session_of_the_referring_page(
    sandbox: RunningSandbox, users: tuple[str, str]
) -> None:
    session = sandbox.login(users[0])
    page = f"https://127.0.0.1:{sandbox.cpanel_port}{session.token}/frontend/jupiter/index.html"
    home = sandbox.request(
        sandbox.cpanel_port,
        "GET",
        f"{session.token}/frontend/jupiter/index.html",
        headers={"Cookie": session.cookie},
    )
    assert home.status == 200
    bye = sandbox.request(
        sandbox.cpanel_port, "GET", "/logout/", headers={"Cookie": session.cookie, "Referer": page}
    )
    assert bye.status == 200
    assert sandbox.uapi(session, "DomainInfo", "list_domains", {}).status == 401


def test_no_secret_reaches_the_server_log(sandbox: RunningSandbox, users: tuple[str, str]) -> None:
    url = sandbox.login_url(users[0])
    secret = url.split("session=", 1)[1]
    path = url.split(str(sandbox.cpanel_port), 1)[1]
    reply = sandbox.request(sandbox.cpanel_port, "GET", path)
    cookie = (reply.header("Set-Cookie") or "").split(";", 1)[0].split("=", 1)[1]
    token = (reply.header("Location") or "").split("/")[1]
    sandbox.request(sandbox.cpanel_port, "GET", f"/{token}/execute/X/y?key=SECRETKEY")
    # A malformed request line is logged by the stdlib as an error: it must be redacted too.
    with (
        socket.create_connection(("127.0.0.1", sandbox.cpanel_port), timeout=10) as raw,
        sandbox.tls_context().wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET /x?key=SECRETKEY2 HTTP/9.9\r\n\r\n")
        assert b"Error" in tls.recv(200)
    log = (sandbox.root / "var/cpanel/sandbox.log").read_text(encoding="utf-8")
    assert "cpaneld: GET /cpsess…/login/ 302" in log
    for value in (secret, cookie, token, sandbox.whm_token, "SECRETKEY"):
        assert value not in log


# ---- cPanel user API tokens (cpanel-api.md §1.1) ----------------------------------------------


def _make_cpanel_token(sandbox: RunningSandbox, user: str, name: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "cpanel_sandbox.tokens", str(sandbox.root), user, name],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def cpanel_token(sandbox: RunningSandbox, users: tuple[str, str]) -> str:
    return _make_cpanel_token(sandbox, users[0], "sandbox-test")


def _with_token(sandbox: RunningSandbox, port: int, path: str, auth: str) -> tuple[int, bytes]:
    reply = sandbox.request(port, "GET", path, headers={"Authorization": auth})
    return reply.status, reply.body


def test_cpanel_token_opens_uapi_as_its_user(
    sandbox: RunningSandbox, users: tuple[str, str], cpanel_token: str
) -> None:
    auth = f"cpanel {users[0]}:{cpanel_token}"
    reply = sandbox.request(
        sandbox.cpanel_port,
        "GET",
        "/execute/DomainInfo/list_domains",
        headers={"Authorization": auth},
    )
    assert reply.status == 200, reply.body[:300]
    body = reply.json()
    assert body["status"] == 1
    assert body["data"]["main_domain"] == "authone.test"
    # Kept only as a hash, root's alone.
    path = layout.api_tokens_file(sandbox.root, users[0], "cpanel")
    assert cpanel_token not in path.read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_wrong_cpanel_token_is_an_http_error(
    sandbox: RunningSandbox, users: tuple[str, str], cpanel_token: str
) -> None:
    wrong = ("A" if cpanel_token[0] != "A" else "B") + cpanel_token[1:]
    status, body = _with_token(
        sandbox,
        sandbox.cpanel_port,
        "/execute/DomainInfo/list_domains",
        f"cpanel {users[0]}:{wrong}",
    )
    assert status == 403
    assert _is_html_refusal(body)


def test_cpanel_token_of_another_user_opens_nothing(
    sandbox: RunningSandbox, users: tuple[str, str], cpanel_token: str
) -> None:
    # authone's token presented as authtwo's: refused, not UAPI as either of them.
    status, body = _with_token(
        sandbox,
        sandbox.cpanel_port,
        "/execute/DomainInfo/list_domains",
        f"cpanel {users[1]}:{cpanel_token}",
    )
    assert status == 403
    assert b"authone.test" not in body and b"authtwo.test" not in body
    # And a token made for a user that does not exist is never made.
    proc = subprocess.run(
        [sys.executable, "-m", "cpanel_sandbox.tokens", str(sandbox.root), "nosuchuser", "t"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "nosuchuser" in proc.stderr


@pytest.mark.parametrize("where", ["whm", "whm-on-cpanel-port", "page"])
def test_cpanel_token_outside_uapi_is_refused(
    sandbox: RunningSandbox, users: tuple[str, str], cpanel_token: str, where: str
) -> None:
    port, path = {
        "whm": (sandbox.whm_port, "/json-api/listaccts?api.version=1"),
        "whm-on-cpanel-port": (sandbox.cpanel_port, "/json-api/listaccts?api.version=1"),
        "page": (sandbox.cpanel_port, "/frontend/jupiter/index.html"),
    }[where]
    status, body = _with_token(sandbox, port, path, f"cpanel {users[0]}:{cpanel_token}")
    assert status == 403
    assert SCOPE_ERROR in body
    assert b"authone" not in body.replace(SCOPE_ERROR, b"")
