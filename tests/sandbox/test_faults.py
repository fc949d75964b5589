"""Fault switches: each mode over HTTPS UAPI, WHM API 1 and LiveAPI; countdown; env at start."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from cpanel_sandbox import faults
from tests.fixtures.sandbox import PROBE_CGI, RunningSandbox
from tests.sandbox.pki import TestCA

PAGE = "faultprobe/probe.live.cgi"


@pytest.fixture(scope="module")
def user(sandbox: RunningSandbox) -> str:
    sandbox.add_user("faultone", "faultone.test")
    sandbox.install_cgi("cpanel", PAGE, PROBE_CGI)
    return "faultone"


@pytest.fixture(autouse=True)
def no_faults_left(sandbox: RunningSandbox) -> object:
    yield None
    sandbox.clear_faults()


def test_status0(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login(user)
    sandbox.set_fault("SSL::install_ssl", "status0")
    reply = sandbox.uapi(session, "SSL", "install_ssl", {"domain": "faultone.test", "cert": "x"})
    assert reply.status == 200
    data = reply.json()
    assert data["status"] == 0
    assert data["errors"] == [
        "The certificate could not be installed on the domain “faultone.test”."
    ]
    assert set(data) == {"status", "errors", "warnings", "messages", "metadata", "data"}
    # once only: the next call reaches the function again
    again = sandbox.uapi(session, "SSL", "install_ssl", {"domain": "faultone.test"}).json()
    assert again["errors"] != data["errors"]


def test_unknown_error_after_the_work_was_done(sandbox: RunningSandbox, user: str) -> None:
    leaf = TestCA().leaf(["faultone.test"])
    cert_pem, key_pem = leaf.cert, leaf.key
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    session = sandbox.login(user)
    sandbox.set_fault("SSL::install_ssl", "unknown_error")
    args = {"domain": "faultone.test", "cert": cert_pem, "key": key_pem}
    data = sandbox.uapi(session, "SSL", "install_ssl", args).json()
    try:
        assert data["status"] == 0
        assert any("unknown error" in e.lower() for e in data["errors"])
        assert data["data"]["cert_id"]  # cPanel sets data before failing (§1.1)
        assert sandbox.fetch_site_cert("faultone.test") == cert  # and it did install
    finally:
        sandbox.uapi(session, "SSL", "delete_ssl", {"domain": "faultone.test"})


def test_html(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login(user)
    sandbox.set_fault("DomainInfo::list_domains", "html")
    reply = sandbox.uapi(session, "DomainInfo", "list_domains", {})
    assert reply.status == 200
    assert (reply.header("Content-Type") or "").startswith("text/html")
    assert b"<html" in reply.body
    with pytest.raises(ValueError):
        json.loads(reply.body)


def test_truncated(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login(user)
    whole = sandbox.uapi(session, "DomainInfo", "list_domains", {}).body
    sandbox.set_fault("DomainInfo::list_domains", "truncated")
    reply = sandbox.uapi(session, "DomainInfo", "list_domains", {})
    assert reply.status == 200
    assert 0 < len(reply.body) < len(whole)
    assert whole.startswith(reply.body)
    with pytest.raises(ValueError):
        json.loads(reply.body)


def test_timeout(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login(user)
    sandbox.set_fault("DomainInfo::list_domains", "timeout")
    started = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout)):
        sandbox.request(
            sandbox.cpanel_port,
            "GET",
            f"{session.token}/execute/DomainInfo/list_domains",
            headers={"Cookie": session.cookie},
            timeout=1.5,
        )
    assert time.monotonic() - started < 10
    # The server keeps serving others meanwhile.
    assert sandbox.uapi(session, "DomainInfo", "list_domains", {}).status == 200


def test_drop(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login(user)
    sandbox.set_fault("DomainInfo::list_domains", "drop")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
        sandbox.uapi(session, "DomainInfo", "list_domains", {})
    assert sandbox.uapi(session, "DomainInfo", "list_domains", {}).status == 200


def test_times_count_down_and_persist(sandbox: RunningSandbox, user: str) -> None:
    session = sandbox.login(user)
    sandbox.set_fault("DomainInfo::list_domains", "status0", times=2)
    assert sandbox.uapi(session, "DomainInfo", "list_domains", {}).json()["status"] == 0
    state = faults.read_state(sandbox.root)
    assert state["faults"]["DomainInfo::list_domains"] == {"mode": "status0", "times": 1}
    assert state["pid"] == sandbox.process.pid
    assert sandbox.uapi(session, "DomainInfo", "list_domains", {}).json()["status"] == 0
    assert sandbox.uapi(session, "DomainInfo", "list_domains", {}).json()["status"] == 1
    assert "DomainInfo::list_domains" not in faults.read_state(sandbox.root)["faults"]


def test_whm_status0_and_html(sandbox: RunningSandbox) -> None:
    sandbox.set_fault("whm:gethostname", "status0")
    failed = sandbox.whm_api("gethostname").json()
    assert failed["metadata"]["result"] == 0
    assert failed["metadata"]["reason"].startswith("API failure: ")
    assert "data" not in failed
    sandbox.set_fault("whm:gethostname", "unknown_error")
    unknown = sandbox.whm_api("gethostname").json()
    assert unknown["metadata"]["result"] == 0 and "unknown error" in unknown["metadata"]["reason"]
    sandbox.set_fault("whm:gethostname", "html")
    page = sandbox.whm_api("gethostname")
    assert page.status == 200 and b"<html" in page.body
    assert sandbox.whm_api("gethostname").json()["metadata"]["result"] == 1


def test_whm_drop(sandbox: RunningSandbox) -> None:
    sandbox.set_fault("whm:gethostname", "drop")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
        sandbox.whm_api("gethostname")


def _live(sandbox: RunningSandbox, user: str, wait: float = 10) -> dict:
    session = sandbox.login(user)
    reply = sandbox.request(
        sandbox.cpanel_port,
        "GET",
        f"{session.token}/frontend/jupiter/{PAGE}?module=DomainInfo&func=list_domains&wait={wait}",
        headers={"Cookie": session.cookie},
    )
    assert reply.status == 200, reply.body[:300]
    return json.loads(reply.body)["live"]


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        ("status0", lambda live: live["json"]["result"]["status"] == 0),
        ("unknown_error", lambda live: "unknown error" in live["json"]["result"]["errors"][-1]),
        ("html", lambda live: "<html" in live["raw"] and "json" not in live),
        ("truncated", lambda live: live.get("eof") and "</cpanelresult>" not in live["raw"]),
        ("timeout", lambda live: live.get("timeout") and live["raw"] == ""),
        ("drop", lambda live: live.get("eof") and live["raw"] == ""),
    ],
)
def test_liveapi_faults(
    sandbox: RunningSandbox, user: str, mode: str, check: Callable[[dict], bool]
) -> None:
    sandbox.set_fault("DomainInfo::list_domains", mode)
    live = _live(sandbox, user, wait=1.5)
    assert check(live), live
    assert _live(sandbox, user)["json"]["result"]["status"] == 1


def test_env_faults_apply_from_the_start(fresh_sandbox: Callable[..., RunningSandbox]) -> None:
    spec = {"whm:gethostname": {"mode": "status0", "times": 1}, "bad": {"mode": "nope"}}
    running = fresh_sandbox(env={faults.ENV_VAR: json.dumps(spec)})
    assert faults.read_state(running.root)["faults"] == {
        "whm:gethostname": {"mode": "status0", "times": 1}
    }
    assert running.whm_api("gethostname").json()["metadata"]["result"] == 0
    assert running.whm_api("gethostname").json()["metadata"]["result"] == 1


def test_take_fault_without_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = Path(tmp_path_factory.mktemp("faultroot"))
    assert faults.take_fault(root, "A::b") is None
    faults.set_fault(root, "A::b", "drop", times=None)
    assert [faults.take_fault(root, "A::b") for _ in range(3)] == ["drop"] * 3
    faults.clear_faults(root)
    assert faults.take_fault(root, "A::b") is None
    with pytest.raises(ValueError):
        faults.set_fault(root, "A::b", "explode")
