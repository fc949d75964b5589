"""The cPanel page's app in process, with cPanel's answers scripted and the issuer faked: how
failures become statuses and messages, CSRF, the busy lock, and the page's private files."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

import pytest

from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.cpanel.uapi import UserAPI
from letsencrypt_cpanel.errors import (
    ChallengeFailed,
    CpanelAPIError,
    InstallFailed,
    NameRefused,
    RateLimited,
    RecordError,
)
from letsencrypt_cpanel.issue_budget import BudgetDenied
from letsencrypt_cpanel.web import one_time_message
from letsencrypt_cpanel.web.cpanel import create_app
from letsencrypt_cpanel.web.csrf import HMAC_KEY_FILE, CsrfGuard
from letsencrypt_cpanel.web.nvdata_files import NvdataFolder
from letsencrypt_cpanel.web.progress import BUSY_LOCK, ProgressFile
from letsencrypt_cpanel.web.rendering import TEMPLATES_ENV, templates_dir
from tests.unit.cpanel.scripted import ScriptedTransport

SESSION = "/cpsess1111111111"
PAGE = SESSION + "/frontend/jupiter/letsencrypt-cpanel/letsencrypt.live.cgi"
MAIN = {
    "domain": "example.com",
    "servername": "example.com",
    "type": "main_domain",
    "documentroot": "/home/example/public_html",
    "serveralias": "www.example.com parked.net",
}


def ok(data: Any) -> dict[str, Any]:
    return {"status": 1, "errors": None, "messages": None, "metadata": {}, "data": data}


@dataclass
class Result:
    names: list[str]
    not_after: int = 1_900_000_000
    reused_saved: bool = False

    def summary(self) -> dict[str, Any]:
        return {"vhost": self.names[0], "names": self.names, "not_after": self.not_after}


@dataclass
class FakeIssuer:
    failure: Exception | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    progress: Callable[[str], None] = lambda _s: None

    def issue(self, names: list[str], key_type: str | None = None) -> Result:
        self.calls.append(("issue", (names, key_type)))
        self.progress("checking names")
        self.progress(f"validating {names[0]}")
        if self.failure is not None:
            raise self.failure
        return Result(list(names))

    def reinstall(self, vhost: str) -> Result:
        self.calls.append(("reinstall", vhost))
        return Result([vhost])

    def remove(self, vhost: str) -> None:
        self.calls.append(("remove", vhost))


@dataclass
class Page:
    home: Path
    issuer: FakeIssuer
    app: Any

    def call(
        self, method: str, query: dict[str, str] | None = None, form: Any = None, **kw: Any
    ) -> tuple[int, dict[str, str], str]:
        body = urlencode(form or {}, doseq=True).encode()
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "QUERY_STRING": urlencode(query or {}),
            "SCRIPT_NAME": PAGE.removeprefix(SESSION),
            "cp_security_token": kw.get("session", SESSION),
            "REMOTE_USER": "example",
            "HTTP_ACCEPT": "application/json" if kw.get("json_api") else "text/html",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        setup_testing_defaults(environ)
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

        out = b"".join(self.app(environ, start_response)).decode()
        return seen["status"], seen["headers"], out

    def token(self, session: str = SESSION) -> str:
        return CsrfGuard(NvdataFolder(self.home), session).token()


@pytest.fixture
def page(tmp_path: Path) -> Page:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    answers = {
        "DomainInfo::domains_data": ok({"main_domain": MAIN, "addon_domains": []}),
        "SSL::installed_hosts": ok([]),
        "Features::has_feature": ok(None),
        # The Issue form asks which zones are here (for Wildcard); none in this script.
        "DNS::parse_zone": {**ok(None), "status": 0, "errors": ["You do not control a zone."]},
    }
    issuer = FakeIssuer()

    def make_issuer(api: Any, store: Any, settings: Any, email: Any, progress: Any) -> FakeIssuer:
        issuer.progress = progress
        return issuer

    app = create_app(
        Settings(root=tmp_path),
        lambda env: UserAPI(ScriptedTransport(answers)),
        home_finder=lambda settings, env: home,
        issuer_factory=make_issuer,
    )
    return Page(home, issuer, app)


def test_csrf_tokens_are_per_session_and_the_key_is_private(page: Page) -> None:
    first, second = page.token(SESSION), page.token("/cpsess2222222222")
    assert first != second and len(first) == 64
    assert page.token(SESSION) == first  # the key persists
    assert not CsrfGuard(NvdataFolder(page.home), "").token()  # no session, no token
    nvdata = page.home / ".cpanel" / "nvdata"
    assert stat.S_IMODE((nvdata / HMAC_KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(nvdata.stat().st_mode) == 0o700
    guard = CsrfGuard(NvdataFolder(page.home), SESSION)
    assert guard.valid(first) and not guard.valid(second) and not guard.valid("")


def test_post_needs_the_token_of_this_session(page: Page) -> None:
    form = {"action": "issue", "vhost": "example.com", "name": "example.com"}
    for token in ("", page.token("/cpsess2222222222"), "é" * 64):
        status, _h, body = page.call("POST", form={**form, "csrf_token": token})
        assert status == 403 and "did not come from your cPanel session" in body
    assert page.issuer.calls == []
    status, headers, _ = page.call("POST", form={**form, "csrf_token": page.token()})
    assert status == 303 and headers["Location"] == PAGE
    assert page.issuer.calls == [("issue", (["example.com"], "rsa:2048"))]


def test_every_answer_carries_the_security_headers(page: Page) -> None:
    status, headers, body = page.call("GET")
    assert status == 200 and "example.com" in body and "parked.net" in body
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    nonce = headers["Content-Security-Policy"].split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<style nonce="{nonce}">' in body


MARKUP = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize(
    ("failure", "status", "words"),
    [
        (RateLimited("too many certificates", dt.datetime(2030, 1, 2, 3, 4)), 429, "2030-01-02"),
        (ChallengeFailed("example.com", f"got {MARKUP}"), 502, "DNS A and AAAA"),
        (CpanelAPIError("SSL", "install_ssl", [MARKUP]), 502, "hosting provider"),
        (InstallFailed("issued and saved; Try Reinstall"), 502, "Try Reinstall"),
        (RecordError("Another task is working on these certificates"), 409, "Another task"),
        (NameRefused("example.com", "too many names"), 400, "too many names"),
    ],
)
def test_failures_say_what_to_do_with_a_fitting_status(
    page: Page, failure: Exception, status: int, words: str
) -> None:
    page.issuer.failure = failure
    form = {"action": "issue", "vhost": "example.com", "name": "example.com"}
    got, _h, body = page.call("POST", form={**form, "csrf_token": page.token()}, json_api=True)
    reply = json.loads(body)
    assert got == status and reply["success"] is False and words in reply["errors"][0]

    got, headers, _ = page.call("POST", form={**form, "csrf_token": page.token()})
    assert got == 303
    assert headers["Location"] == PAGE + "?action=issue&vhost=example.com"
    _s, _h, shown = page.call("GET", {"action": "issue", "vhost": "example.com"})
    assert "alert-error" in shown and words.replace("'", "&#39;") in shown
    assert MARKUP not in shown
    progress = ProgressFile(NvdataFolder(page.home)).read("example.com")
    assert progress["step"] == "failed" and "Proving you control example.com" in progress["steps"]


def test_a_rate_limit_answers_429_with_retry_after_when_the_ca_said_when(page: Page) -> None:
    form = {"action": "issue", "vhost": "example.com", "name": "example.com"}
    for when, retry_after in (
        (dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.timezone.utc), "Wed, 02 Jan 2030 03:04:00 GMT"),
        (None, None),
    ):
        page.issuer.failure = RateLimited("too many certificates", when)
        got, headers, body = page.call(
            "POST", form={**form, "csrf_token": page.token()}, json_api=True
        )
        assert got == 429 and headers.get("Retry-After") == retry_after
        assert "rate limit was reached: too many certificates" in json.loads(body)["errors"][0]
        # Root's own budget, before the CA was asked (issue_budget.py): the same answer.
        page.issuer.failure = BudgetDenied("rate limit duplicates (example.com)", when)
        got, headers, body = page.call(
            "POST", form={**form, "csrf_token": page.token()}, json_api=True
        )
        assert got == 429 and headers.get("Retry-After") == retry_after
        assert "holds the order back" in json.loads(body)["errors"][0]


def test_a_second_click_while_busy_answers_409(page: Page) -> None:
    form = {"action": "issue", "vhost": "example.com", "name": "example.com"}
    with NvdataFolder(page.home).exclusive(BUSY_LOCK) as taken:
        assert taken
        status, _h, body = page.call("POST", form={**form, "csrf_token": page.token()})
    assert status == 409 and "Wait for it to finish" in body
    assert page.issuer.calls == []


def test_bad_input_is_refused_before_the_issuer(page: Page) -> None:
    token = page.token()
    dsa = {"action": "issue", "vhost": "example.com", "name": "example.com", "key_type": "dsa"}
    cases = [
        ({"action": "issue", "vhost": "example.com"}, 400),  # no name ticked
        ({"action": "issue", "vhost": "example.com", "name": "a..b"}, 400),
        ({"action": "issue", "vhost": "example.com", "name": "other.org"}, 403),
        (dsa, 400),
        ({"action": "nonsense"}, 400),
        ({"action": "reinstall", "vhost": "example.com"}, 404),  # nothing of the plugin's there
    ]
    for form, status in cases:
        got, _h, body = page.call("POST", form={**form, "csrf_token": token}, json_api=True)
        assert got == status, (form, body)
        assert json.loads(body)["errors"]
    assert page.issuer.calls == []


def test_page_files_refuse_planted_links(page: Page, tmp_path: Path) -> None:
    folder = NvdataFolder(page.home)
    one_time_message.leave(folder, "success", "hello")
    target = tmp_path / "elsewhere"
    target.write_text('{"kind": "error", "text": "planted"}')
    message = folder.path / one_time_message.MESSAGE_FILE
    message.unlink()
    os.symlink(target, message)
    assert one_time_message.take(folder) is None  # the link is not followed
    one_time_message.leave(folder, "success", "fresh")  # replaces the link, not its target
    assert target.read_text() == '{"kind": "error", "text": "planted"}'
    assert one_time_message.take(folder) == one_time_message.Message("success", "fresh")
    assert one_time_message.take(folder) is None  # once


def test_templates_folder_can_be_moved(tmp_path: Path) -> None:
    assert (templates_dir({}) / "cpanel" / "home.html").is_file()
    assert templates_dir({TEMPLATES_ENV: str(tmp_path)}) == tmp_path


def test_progress_of_a_request_that_died_is_not_running(page: Page, tmp_path: Path) -> None:
    folder = NvdataFolder(page.home)
    progress = ProgressFile(folder)
    progress.start("example.com")
    progress.step("order")
    now = progress.read("example.com")
    assert now["running"] is True and now["text"] == "Ordering the certificate"
    assert now["steps"] == ["Starting", "Ordering the certificate"]
    assert progress.read("other.org")["running"] is False  # another website's
    path = folder.path / "letsencrypt-cpanel.progress"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "pid": 2**22 + 12345}))  # above pid_max: no such process
    assert progress.read("example.com")["running"] is False
    progress.step("done")
    assert progress.read("example.com")["running"] is False


def test_a_bug_still_answers_a_page_without_a_trace(page: Page) -> None:
    page.app = create_app(
        Settings(root=page.home.parent),
        lambda env: UserAPI(ScriptedTransport({"Features::has_feature": ok(None)})),
        home_finder=lambda settings, env: page.home,
    )
    status, _h, body = page.call("GET")  # domains_data is not scripted: a KeyError inside
    assert status == 500 and "tell your host" in body
    assert "Traceback" not in body and "KeyError" not in body
