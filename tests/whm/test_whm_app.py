"""The WHM app in process (WSGI), with a stand-in WHM API: access before anything, CSRF on every
POST, options validated and saved (secrets write-only, 0600), sorting and filtering by query
parameters, the chart, and the report's reasons. The page host tests run the same app as cpsrvd
does; these pin the rules down one by one."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from letsencrypt_cpanel.config import Settings, load_secrets, load_settings
from letsencrypt_cpanel.cpanel.models import (
    Account,
    AutosslProvider,
    CertificateFacts,
    DomainInfo,
    SslVhost,
)
from letsencrypt_cpanel.errors import CpanelAPIError
from letsencrypt_cpanel.report import expiry_weeks
from letsencrypt_cpanel.state import StateDB, VhostState
from letsencrypt_cpanel.web.whm import create_app
from letsencrypt_cpanel.web.whm_chart import build_chart

DAY = 86400
NOW = int(time.time())
TOKEN = "/cpsess0123456789"


def _cert(names: tuple[str, ...], not_after: int, *, self_signed: bool = False) -> CertificateFacts:
    issuer = "self" if self_signed else "R11"
    return CertificateFacts(
        "id", names, names[0], issuer, "Let's Encrypt", NOW - 10 * DAY, not_after, self_signed,
        key_type="ecdsa:p-256",
    )  # fmt: skip


@dataclass
class FakeWhm:
    accounts: list[Account]
    vhosts: list[SslVhost]
    domains: list[DomainInfo] | None
    autossl_on: bool = True
    excluded: dict[str, list[str]] = field(default_factory=dict)

    def listaccts(self) -> list[Account]:
        return self.accounts

    def fetch_ssl_vhosts(self) -> list[SslVhost]:
        return self.vhosts

    def get_domain_info(self) -> list[DomainInfo]:
        if self.domains is None:
            raise CpanelAPIError("", "get_domain_info", ["Permission denied"], transport="whm")
        return self.domains

    def get_autossl_providers(self) -> list[AutosslProvider]:
        return [AutosslProvider("cPanel", "cPanel (Sectigo)", self.autossl_on)]

    def add_autossl_user_excluded_domains(self, user: str, domains: list[str]) -> None:
        self.excluded.setdefault(user, []).extend(domains)


def _account(user: str, owner: str) -> Account:
    return Account(user, f"{user}.test", f"{user}@mail.test", owner, False, 1000)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "var/cpanel").mkdir(parents=True)
    (tmp_path / "var/cpanel/resellers").write_text("limited:list-accts,create-acct\nboss:all\n")
    return tmp_path


@pytest.fixture
def whm() -> FakeWhm:
    accounts = [_account("alice", "root"), _account("bob", "limited"), _account("carol", "root")]
    vhosts = [
        SslVhost("alice.test", "alice", ("alice.test", "www.alice.test"), "/d", "main",
                 _cert(("alice.test", "www.alice.test"), NOW + 40 * DAY)),
        SslVhost("bob.test", "bob", ("bob.test",), "/d", "main",
                 _cert(("bob.test",), NOW + 5 * DAY)),
        SslVhost("carol.test", "carol", ("carol.test",), "/d", "main",
                 _cert(("carol.test",), NOW + 300 * DAY, self_signed=True)),
    ]  # fmt: skip
    domains = [
        DomainInfo("alice.test", "alice", "root", "main", "alice.test", "/d"),
        DomainInfo("bob.test", "bob", "limited", "main", "bob.test", "/d"),
        DomainInfo("shop.test", "bob", "limited", "addon", "shop.bob.test", "/d2"),
        DomainInfo("shop.bob.test", "bob", "limited", "sub", "bob.test", "/d2"),
        DomainInfo("carol.test", "carol", "root", "main", "carol.test", "/d"),
    ]
    return FakeWhm(accounts, vhosts, domains)


def _state(root: Path) -> None:
    rows = [
        VhostState("alice", "alice.test", "not_due", ("alice.test", "www.alice.test"),
                   NOW - 10 * DAY, NOW + 40 * DAY, "R11", 0, "", NOW - 3600, 0),
        VhostState("bob", "bob.test", "failed", ("bob.test",), NOW - 80 * DAY, NOW + 5 * DAY,
                   "R11", 2, "the CA said no", NOW - 60, NOW + 7200),
        VhostState("bob", "shop.test", "failed", ("shop.test",), 0, 0, "", 1, "timeout", NOW, 0),
    ]  # fmt: skip
    with StateDB.open(Settings(root=root)) as db, db.transaction():
        for r in rows:
            db.put_vhost(r, NOW)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


@pytest.fixture
def call(root: Path, whm: FakeWhm) -> Iterator[Any]:
    _state(root)

    def do(
        user: str,
        method: str = "GET",
        query: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        *,
        json_api: bool = False,
        json_body: dict[str, Any] | None = None,
        token: str = TOKEN,
    ) -> Reply:
        settings = load_settings({"LECP_ROOT": str(root)})
        app = create_app(settings, lambda s: whm)
        body = b""
        ctype = ""
        if json_body is not None:
            body, ctype = json.dumps(json_body).encode(), "application/json"
        elif form is not None:
            body, ctype = urlencode(form).encode(), "application/x-www-form-urlencoded"
        environ = {
            "REQUEST_METHOD": method,
            "QUERY_STRING": urlencode(query or {}),
            "REMOTE_USER": user,
            "cp_security_token": token,
            "SCRIPT_NAME": "/cgi/letsencrypt-cpanel/letsencrypt.live.cgi",
            "HTTP_ACCEPT": "application/json" if json_api else "text/html",
            "CONTENT_TYPE": ctype,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        got: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            got["status"], got["headers"] = int(status.split()[0]), dict(headers)

        out = b"".join(app(environ, start_response))
        return Reply(got["status"], got["headers"], out)

    yield do


def _token(call: Any, user: str = "root") -> str:
    return str(call(user, json_api=True).json()["data"]["csrf_token"])


def test_strangers_get_403_before_anything(call: Any, root: Path) -> None:
    for user in ("", "alice", "nobody"):
        reply = call(user, json_api=True)
        assert reply.status == 403 and reply.json()["success"] is False
        assert "root and resellers" in reply.json()["errors"][0]
        assert call(user, "POST", form={"action": "save_options"}).status == 403
    # Nothing was even created for them: no CSRF secret in root's state.
    assert not (root / "var/lib/letsencrypt-cpanel/whm-csrf.secret").exists()


def test_limited_reseller_sees_own_accounts_and_gets_403_on_options_and_actions(
    call: Any, root: Path
) -> None:
    data = call("limited", json_api=True).json()["data"]
    assert data["full_access"] is False
    assert {r["user"] for r in data["certificates"]} == {"bob"}
    assert {u["user"] for u in data["uncovered"]} == {"bob"}
    assert data["cpanel_autossl"] is None
    html = call("limited").text
    assert 'id="limited-view"' in html and "tab-options" not in html and "alice" not in html
    token = _token(call, "limited")
    for action in ("options", "actions"):
        assert call("limited", query={"action": action}).status == 403
        assert call("limited", query={"action": action}, json_api=True).status == 403
    for action in ("save_options", "renew", "autossl", "service_cert", "exclude_cpanel_autossl"):
        form = {"action": action, "csrf_token": token, "user": "bob", "renewal_days": "5"}
        reply = call("limited", "POST", form=form, json_api=True)
        assert reply.status == 403, action
        assert "administrator" in reply.json()["errors"][0] or "all" in reply.json()["errors"][0]
    assert not (root / "etc/letsencrypt-cpanel.conf").exists()


def test_root_and_all_reseller_see_everything(call: Any) -> None:
    for user in ("root", "boss"):
        data = call(user, json_api=True).json()["data"]
        assert data["full_access"] is True
        assert {r["user"] for r in data["certificates"]} == {"alice", "bob"}
        assert data["cpanel_autossl"]["enabled"] is True
    data = call("root", json_api=True).json()["data"]
    rows = {r["vhost"]: r for r in data["certificates"]}
    assert rows["alice.test"]["installed"] and rows["alice.test"]["key_type"] == "ecdsa:p-256"
    assert rows["bob.test"]["failed"] and "the CA said no" in rows["bob.test"]["result"]
    reasons = {u["domain"]: u["reason"] for u in data["uncovered"]}
    assert reasons["carol.test"].startswith("Self-signed")
    # An addon's vhost with nothing installed, and the plugin's failure there.
    assert reasons["shop.test"] == (
        "No certificate installed; the plugin's last attempt failed: timeout"
    )
    assert "alice.test" not in reasons


def test_sorting_and_filtering_by_query(call: Any) -> None:
    def vhosts(**query: str) -> list[str]:
        data = call("root", query=query, json_api=True).json()["data"]
        return [r["vhost"] for r in data["certificates"]]

    assert vhosts(sort="expiry") == ["shop.test", "bob.test", "alice.test"]
    assert vhosts(sort="expiry", order="desc") == ["alice.test", "bob.test", "shop.test"]
    assert vhosts(status="failed") == ["shop.test", "bob.test"]
    assert vhosts(q="ALICE") == ["alice.test"]
    assert vhosts(status="expiring") == ["bob.test"]
    html = call("root", query={"q": "alice"}).text
    assert 'data-vhost="alice.test"' in html and 'data-vhost="bob.test"' not in html
    assert 'value="alice"' in html  # the filter form keeps what was asked


def test_chart_counts_weeks_and_failures(call: Any) -> None:
    weeks = call("root", json_api=True).json()["data"]["expiry_weeks"]
    assert len(weeks) == 13
    assert (weeks[0]["total"], weeks[0]["failed"]) == (1, 1)  # bob, 5 days, failed
    assert (weeks[5]["total"], weeks[5]["failed"]) == (1, 0)  # alice, 40 days
    html = call("root").text
    assert html.count('<g class="week"') == 13
    assert 'data-week="0" data-total="1" data-failed="1"' in html
    assert '<rect class="failed"' in html and "<script" not in html


def test_chart_scale_is_whole_numbers() -> None:
    chart = build_chart(expiry_weeks([], NOW))
    assert [v for _, v in chart.ticks] == [0, 1] and chart.total == 0


def test_options_validated_saved_and_secrets_write_only(call: Any, root: Path) -> None:
    token = _token(call)
    bad = {
        "action": "save_options",
        "csrf_token": token,
        "renewal_days": "999",
        "acme_directory": "ftp://ca.test/dir",
        "mail_from": "not-an-address",
        "hostcert_extra_names": "ok.example.com\nbad name",
    }
    reply = call("root", "POST", form=bad, json_api=True)
    assert reply.status == 400
    errors = " ".join(reply.json()["errors"])
    for part in ("renewal_days must be between", "https:// URL", "not an e-mail", "not a host"):
        assert part in errors
    assert not (root / "etc/letsencrypt-cpanel.conf").exists()

    good = {
        "action": "save_options",
        "form": "options",
        "csrf_token": token,
        "acme_directory_choice": "staging",
        "renewal_days": "21",
        "default_key_type": "ecdsa:p-384",
        "autossl_enabled": "1",
        "autossl_exclude": "*.dev.test\nstaging.*",
        "smtp_password": "hunter2-secret",
        "eab_hmac_key": "",
        "hostcert_extra_names": "mail.server.test",
    }
    reply = call("root", "POST", form=good)
    assert reply.status == 303
    assert reply.headers["Location"].endswith("?action=options&saved=down")
    settings = load_settings({"LECP_ROOT": str(root)})
    assert settings.acme_directory.startswith("https://acme-staging-v02")
    assert settings.renewal_days == 21 and settings.default_key_type == "ecdsa:p-384"
    assert settings.autossl_enabled and settings.autossl_exclude == ("*.dev.test", "staging.*")
    assert settings.send_success_mail is False  # an unticked box on the whole form is "off"
    assert load_secrets(settings).smtp_password == "hunter2-secret"
    assert (root / "etc/letsencrypt-cpanel.secrets").stat().st_mode & 0o777 == 0o600
    assert "hunter2" not in (root / "etc/letsencrypt-cpanel.conf").read_text()
    page = call("root", query={"action": "options"}).text
    assert "hunter2" not in page and "set: leave empty to keep it" in page
    assert (
        call("root", query={"action": "options"}, json_api=True).json()["data"]["options"][
            "smtp_password"
        ]
        is True
    )

    # JSON changes only what it names; an empty secret keeps the stored one.
    body = {"action": "save_options", "renewal_days": 7, "smtp_password": ""}
    reply = call("root", "POST", json_api=True, json_body=body, token=TOKEN)
    assert reply.status == 403  # no CSRF header
    reply = call("root", "POST", form={**body, "csrf_token": token}, json_api=True)
    assert reply.status == 200 and reply.json()["data"]["changed"] == ["renewal_days"]
    settings = load_settings({"LECP_ROOT": str(root)})
    assert settings.renewal_days == 7 and settings.autossl_enabled
    assert load_secrets(settings).smtp_password == "hunter2-secret"


def test_csrf_is_bound_to_session_and_user(call: Any) -> None:
    token = _token(call)
    form = {"action": "save_options", "renewal_days": "3", "csrf_token": token}
    assert call("root", "POST", form=form, token="/cpsess999", json_api=True).status == 403
    assert call("boss", "POST", form=form, json_api=True).status == 403
    assert call("root", "POST", form={**form, "csrf_token": ""}, json_api=True).status == 403
    assert call("root", "POST", form=form, json_api=True).status == 200


def test_exclude_from_cpanel_autossl(call: Any, whm: FakeWhm) -> None:
    form = {"action": "exclude_cpanel_autossl", "csrf_token": _token(call)}
    reply = call("root", "POST", form=form)
    assert reply.status == 200 and 'id="outcome"' in reply.text
    assert whm.excluded == {
        "alice": ["alice.test", "www.alice.test"],
        "bob": ["bob.test", "shop.test"],
    }
    whm.autossl_on = False
    assert call("root", json_api=True).json()["data"]["cpanel_autossl"]["enabled"] is False


def test_without_domain_list_the_ssl_vhosts_are_judged(call: Any, whm: FakeWhm) -> None:
    whm.domains = None
    data = call("root", json_api=True).json()["data"]
    assert [u["vhost"] for u in data["uncovered"]] == ["carol.test"]
    assert "did not list the domains" in data["notes"][0]


def test_broken_config_is_refused_to_strangers_and_explained_to_root(root: Path) -> None:
    from letsencrypt_cpanel.web.whm import app_from_environment

    (root / "etc").mkdir()
    (root / "etc/letsencrypt-cpanel.conf").write_text("{not json")
    app = app_from_environment({"LECP_ROOT": str(root)})
    for user, status in (("alice", 403), ("root", 500)):
        got: dict[str, Any] = {}
        environ = {"REMOTE_USER": user, "HTTP_ACCEPT": "application/json"}
        body = b"".join(app(environ, lambda s, h, got=got: got.update(status=int(s.split()[0]))))
        assert got["status"] == status
        assert ("not valid JSON" in body.decode()) is (user == "root")


def test_key_type_from_cpanel_certificate_fields() -> None:
    from letsencrypt_cpanel.cpanel.parsing import key_type

    assert key_type({"encryption_algorithm": "rsaEncryption", "modulus_length": "4096"}) == (
        "rsa:4096"
    )
    assert key_type({"key_algorithm": "id-ecPublicKey", "ecdsa_curve_name": "prime256v1"}) == (
        "ecdsa:p-256"
    )
    assert key_type({"key_algorithm": "id-ecPublicKey", "ecdsa_curve_name": "secp384r1"}) == (
        "ecdsa:p-384"
    )
    assert key_type({}) == ""


def test_turning_on_the_coexistence_option_excludes_at_once(call: Any, whm: FakeWhm) -> None:
    body = {"action": "save_options", "cpanel_autossl_exclude_managed": True}
    reply = call("root", "POST", form={**body, "csrf_token": _token(call)}, json_api=True)
    assert reply.status == 200, reply.text
    assert reply.json()["data"]["changed"] == ["cpanel_autossl_exclude_managed"]
    assert reply.json()["data"]["cpanel_autossl_excluded"]["ok"] is True
    assert set(whm.excluded) == {"alice", "bob"}


def test_certificates_from_our_ca_not_yet_in_state_are_listed(
    call: Any, root: Path, whm: FakeWhm
) -> None:
    whm.accounts.append(_account("dave", "root"))
    cert = _cert(("dave.test",), NOW + 80 * DAY)
    whm.vhosts.append(SslVhost("dave.test", "dave", ("dave.test",), "/d", "main", cert))
    rows = call("root", json_api=True).json()["data"]["certificates"]
    assert "dave" not in {r["user"] for r in rows}  # R11 not yet seen on a plugin certificate
    with StateDB.open(Settings(root=root)) as db, db.transaction():
        db.add_issuer("R11", NOW)
    rows = call("root", json_api=True).json()["data"]["certificates"]
    dave = next(r for r in rows if r["user"] == "dave")
    assert dave["status"] == "unchecked" and dave["installed"] and not dave["failed"]
    assert dave["result"] == "Not yet checked by the daemon" and dave["key_type"] == "ecdsa:p-256"
    assert sum(r["user"] == "alice" for r in rows) == 1  # known to the daemon: listed once


def test_work_deferred_by_budgets_is_shown_to_whoever_may_see_the_account(
    call: Any, root: Path
) -> None:
    from letsencrypt_cpanel.budgets import Budgets, Denied

    with Budgets.open(Settings(root=root)) as budgets:
        budgets.defer(
            "bob", "shop.test", ["shop.test"], Denied("new_orders", "acct", NOW + 60), NOW
        )
        budgets.defer("alice", "alice.test", ["alice.test"], Denied("duplicates", "x", NOW), NOW)
    rows = call("root", json_api=True).json()["data"]["deferred"]
    assert [(d["user"], d["vhost"]) for d in rows] == [
        ("alice", "alice.test"),
        ("bob", "shop.test"),
    ]
    assert "rate limit new_orders" in rows[1]["reason"]
    assert 'id="deferred"' in call("root").text
    limited = call("limited", json_api=True).json()["data"]["deferred"]
    assert [d["user"] for d in limited] == ["bob"]


def test_what_is_spent_of_the_cas_limits_is_shown_to_full_access_only(
    call: Any, root: Path
) -> None:
    from letsencrypt_cpanel.budgets import Budgets, Spend

    now = time.time()
    with Budgets.open(Settings(root=root)) as budgets:
        budgets.spent(
            [Spend("duplicates", "shop.test,www.shop.test"), Spend("new_orders", "bob")], now
        )
        budgets.rate_limited(
            "too many certificates already issued for <b>shop.test</b>",
            int(now) + 3600, account="bob", names=["shop.test"], ip="192.0.2.1",
        )  # fmt: skip
    data = call("root", json_api=True).json()["data"]["budgets"]
    assert {(b["kind"], b["key"], b["used"], b["limit"]) for b in data["used"]} == {
        ("duplicates", "shop.test,www.shop.test", 1, 5),
        ("new_orders", "bob", 1, 300),
    }
    assert [(p["kind"], p["key"]) for p in data["paused"]] == [("certs_per_domain", "shop.test")]
    page = call("root").text
    assert 'id="budgets"' in page and "1 of 5" in page
    assert "<b>shop.test</b>" not in page and "&lt;b&gt;shop.test&lt;/b&gt;" in page
    # A reseller without `all` sees other accounts' names in no budget key.
    assert call("limited", json_api=True).json()["data"]["budgets"] is None
    assert 'id="budgets"' not in call("limited").text
