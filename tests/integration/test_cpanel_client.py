"""The typed cPanel client end to end against the cPanel sandbox (a real server process).

Every UserAPI method runs through an HTTPS user session (root asked WHM for it) and through the
LiveAPI socket (a CGI run as the user by the sandbox's page host); every WhmAPI method runs through
WHM API 1 over HTTPS with root's token. TLS is pinned to the sandbox's service certificate.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from letsencrypt_cpanel import fork_gate
from letsencrypt_cpanel.config import Secrets, Settings
from letsencrypt_cpanel.cpanel import (
    CommandLineTransport,
    NewRecord,
    PinnedTLS,
    UapiCallFailed,
    UserAPI,
    WhmAPI,
    build_whm_api,
    load_pinned_tls,
    soa_serial,
    user_session,
)
from letsencrypt_cpanel.cpanel.tls import read_pinned_file
from letsencrypt_cpanel.errors import CpanelAPIError, CpanelTransportError
from tests.fixtures.fork_gate_holder import held_elsewhere

REPO = Path(__file__).resolve().parents[2]
USER = "clientapi"
DOMAIN = "client-api.test"
ADDON = "addon-client.test"
SUB = "blog.client-api.test"
PARKED = "parked-client.test"


def make_cert(names: list[str], *, days: int = 30) -> tuple[str, str]:
    """A self-signed (certificate PEM, key PEM) for `names`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


@pytest.fixture(scope="module")
def account(sandbox: Any) -> str:
    sandbox.add_user(
        USER, DOMAIN, addons=[ADDON], subs=[SUB], parked=[PARKED], email="owner@example.net"
    )
    return USER


@pytest.fixture(scope="module")
def settings(sandbox: Any) -> Settings:
    return Settings(
        root=sandbox.root,
        cpanel_host="127.0.0.1",
        cpanel_port=sandbox.cpanel_port,
        whm_port=sandbox.whm_port,
    )


@pytest.fixture(scope="module")
def tls(settings: Settings) -> PinnedTLS:
    return load_pinned_tls(settings)


@pytest.fixture(scope="module")
def whm(sandbox: Any, settings: Settings, tls: PinnedTLS) -> WhmAPI:
    return build_whm_api(settings, Secrets(whm_token=sandbox.whm_token), tls, timeout=20)


@pytest.fixture(autouse=True)
def _no_faults_left(sandbox: Any) -> Iterator[None]:
    yield
    sandbox.clear_faults()


@pytest.fixture
def user_api(account: str, whm: WhmAPI, tls: PinnedTLS, settings: Settings) -> Iterator[UserAPI]:
    session = whm.create_user_session(account)
    with user_session(session, tls, timeout=5, host="127.0.0.1", port=settings.cpanel_port) as api:
        yield api


# ---- WHM API 1 ------------------------------------------------------------------------------


def test_whm_calls_wait_for_a_worker_being_forked(whm: WhmAPI, account: str) -> None:
    # Root's threads call WHM while others fork workers (fork_gate.py).
    with held_elsewhere(fork_gate.forking, 0.4) as released:
        assert account in {a.user for a in whm.listaccts()}
        assert time.time() >= released() > 0


def test_whm_accounts(whm: WhmAPI, account: str) -> None:
    accounts = {a.user: a for a in whm.listaccts()}
    found = accounts[account]
    assert (found.domain, found.email, found.owner, found.suspended) == (
        DOMAIN,
        "owner@example.net",
        "root",
        False,
    )
    assert found.uid > 0
    assert whm.accountsummary(account) == found
    with pytest.raises(CpanelAPIError) as info:
        whm.accountsummary("nosuchuser")
    assert "does not exist" in str(info.value)
    assert not isinstance(info.value, CpanelTransportError)


def test_whm_hostname_and_session(whm: WhmAPI, account: str) -> None:
    assert whm.gethostname()
    session = whm.create_user_session(account)
    assert session.user == account and session.cp_security_token.startswith("/cpsess")
    assert session.expires > 0 and session.url.startswith("https://")
    assert session.session not in repr(session) and "cpsess" not in repr(session)


def test_whm_token_create_gives_a_working_token(
    whm: WhmAPI, settings: Settings, tls: PinnedTLS
) -> None:
    token = whm.api_token_create(f"client-test-{dt.datetime.now().timestamp():.0f}")
    assert token
    other = build_whm_api(settings, Secrets(whm_token=token), tls, timeout=20)
    assert other.gethostname() == whm.gethostname()


def test_whm_bad_token_is_a_transport_error(settings: Settings, tls: PinnedTLS) -> None:
    api = build_whm_api(settings, Secrets(whm_token="WRONG"), tls, timeout=20)
    with pytest.raises(CpanelTransportError) as info:
        api.gethostname()
    assert "HTTP 403" in str(info.value)


def test_whm_service_certificates(whm: WhmAPI, tls: PinnedTLS) -> None:
    services = {s.service: s for s in whm.fetch_service_ssl_components()}
    assert services["cpanel"].certificate_pem.strip() == tls.cert_pem.strip()
    assert services["cpanel"].certificate is not None
    assert "PRIVATE" not in repr(services["cpanel"])
    cert, key = make_cert([whm.gethostname()])
    installed = whm.install_service_ssl_certificate("ftp", cert, key)
    assert installed.service == "ftp" and installed.certificate is not None
    again = {s.service: s for s in whm.fetch_service_ssl_components()}
    assert again["ftp"].certificate_pem.strip() == cert.strip()
    _, other_key = make_cert(["x.example"])
    with pytest.raises(CpanelAPIError):
        whm.install_service_ssl_certificate("ftp", cert, other_key)


@pytest.mark.parametrize("mode", ["status0", "html", "truncated", "drop"])
def test_whm_faults(sandbox: Any, whm: WhmAPI, mode: str) -> None:
    sandbox.set_fault("whm:gethostname", mode)
    with pytest.raises(CpanelAPIError) as info:
        whm.gethostname()
    assert isinstance(info.value, CpanelTransportError) == (mode != "status0")
    assert "<" not in str(info.value)  # never the body


def test_whm_timeout(sandbox: Any, settings: Settings, tls: PinnedTLS) -> None:
    api = build_whm_api(settings, Secrets(whm_token=sandbox.whm_token), tls, timeout=1.5)
    sandbox.set_fault("whm:gethostname", "timeout")
    with pytest.raises(CpanelTransportError) as info:
        api.gethostname()
    assert "1.5 s" in str(info.value)


# ---- pinned TLS -----------------------------------------------------------------------------


def test_wrong_pin_fails_right_pin_passes(sandbox: Any, settings: Settings) -> None:
    wrong, _ = make_cert(["127.0.0.1"])
    secrets = Secrets(whm_token=sandbox.whm_token)
    with pytest.raises(CpanelTransportError) as info:
        build_whm_api(settings, secrets, PinnedTLS.from_pem(wrong)).gethostname()
    assert "pinned" in str(info.value)
    right = PinnedTLS.from_pem(sandbox.service_cert_pem())
    assert build_whm_api(settings, secrets, right).gethostname()


def test_root_rereads_a_renewed_service_certificate(
    sandbox: Any, settings: Settings, tmp_path: Path
) -> None:
    # The pin came from a file that held an old certificate; the file now holds the current one
    # (cPanel renewed it): one re-read, then success.
    pem_file = tmp_path / "cpanel.pem"
    old_cert, old_key = make_cert(["old.example"])
    pem_file.write_text(old_key + old_cert)
    stale = read_pinned_file(pem_file)
    pem_file.write_text(settings.cpanel_service_pem.read_text())
    api = build_whm_api(settings, Secrets(whm_token=sandbox.whm_token), stale)
    assert api.gethostname()


# ---- UAPI through an HTTPS user session -----------------------------------------------------


def test_session_domains(user_api: UserAPI) -> None:
    vhosts = {v.domain: v for v in user_api.domains_data()}
    main, addon, sub = vhosts[DOMAIN], vhosts[ADDON], vhosts[SUB]
    assert (main.kind, addon.kind, sub.kind) == ("main", "addon", "sub")
    assert {DOMAIN, f"www.{DOMAIN}", PARKED, f"www.{PARKED}"} <= set(main.names)
    assert not any(n.startswith(("cpanel.", "webmail.")) for n in main.names)
    assert {ADDON, f"www.{ADDON}"} <= set(addon.names)
    assert addon.servername != ADDON and addon.servername.endswith(DOMAIN)
    assert main.docroot.endswith("/public_html")
    assert user_api.single_domain_data(ADDON).domain == ADDON
    listed = user_api.list_domains()
    assert listed.main_domain == DOMAIN and PARKED in listed.parked_domains
    assert ADDON in listed.addon_domains and SUB in listed.sub_domains


def test_session_account_facts(user_api: UserAPI) -> None:
    assert user_api.has_feature("sslinstall") is True
    assert user_api.has_feature("no-such-feature-here") is False
    info = user_api.get_user_information("home", "contact_email")
    assert info["home"].endswith(f"/home/{USER}")
    assert info["contact_email"] == "owner@example.net"


def test_session_install_list_delete(sandbox: Any, user_api: UserAPI) -> None:
    cert, key = make_cert([SUB, f"www.{SUB}"])
    result = user_api.install_ssl(f"www.{SUB}", cert, key)
    assert result.cert_id and result.key_id and not result.recovered
    assert SUB in result.working_domains
    served = sandbox.fetch_site_cert(SUB)
    assert served.public_bytes(serialization.Encoding.PEM).decode().strip() == cert.strip()

    hosts = {h.servername: h for h in user_api.installed_hosts()}
    host = hosts[SUB]
    assert host.certificate.id == result.cert_id
    assert set(host.certificate.names) == {SUB, f"www.{SUB}"}
    assert (
        host.certificate.is_self_signed and host.certificate.not_after > host.certificate.not_before
    )
    assert host.certificate_pem.strip() == cert.strip()

    assert result.cert_id in {c.id for c in user_api.list_certs()}
    assert result.key_id in {k.id for k in user_api.list_keys()}

    user_api.delete_ssl(SUB)
    assert SUB not in {h.servername for h in user_api.installed_hosts()}
    user_api.delete_cert(result.cert_id)
    user_api.delete_key(result.key_id)
    assert result.cert_id not in {c.id for c in user_api.list_certs()}
    assert result.key_id not in {k.id for k in user_api.list_keys()}
    user_api.delete_cert(result.cert_id)  # nothing to delete is not an error


def test_session_install_refusals(sandbox: Any, user_api: UserAPI) -> None:
    cert, key = make_cert([SUB])
    _, other_key = make_cert([SUB])
    with pytest.raises(CpanelAPIError) as info:
        user_api.install_ssl(SUB, cert, other_key)
    assert "do not match" in str(info.value)
    # A status-0 answer that is not cPanel's "unknown error" stays an error (§1.6).
    sandbox.set_fault("SSL::install_ssl", "status0")
    with pytest.raises(CpanelAPIError) as info:
        user_api.install_ssl(SUB, cert, key)
    assert "could not be installed" in str(info.value)


class UnknownErrorAfterInstall:
    """Passes every call to the real session transport, then doctors install_ssl's answer into
    cPanel's "unknown error" (cpanel-api.md §1.6), keeping `data` or not: the install really
    happened in the sandbox, only the answer lies."""

    def __init__(self, inner: Any, keep_data: bool) -> None:
        self.inner = inner
        self.keep_data = keep_data

    def call_uapi(self, module: str, func: str, args: Any) -> dict[str, Any]:
        result = self.inner.call_uapi(module, func, args)
        if (module, func) != ("SSL", "install_ssl"):
            return result
        raise UapiCallFailed(
            module,
            func,
            ["An unknown error occurred."],
            transport="test",
            data=result["data"] if self.keep_data else None,
            errors=["An unknown error occurred."],
        )


@pytest.mark.parametrize("keep_data", [True, False])
def test_install_ssl_unknown_error_answer(user_api: UserAPI, keep_data: bool) -> None:
    cert, key = make_cert([SUB])
    api = UserAPI(UnknownErrorAfterInstall(user_api.transport, keep_data))
    result = api.install_ssl(SUB, cert, key)
    assert result.recovered
    hosts = {h.servername: h for h in user_api.installed_hosts()}
    assert result.cert_id == hosts[SUB].certificate.id
    user_api.delete_ssl(SUB)


def test_install_ssl_unknown_error_that_did_not_install(user_api: UserAPI) -> None:
    class UnknownErrorWithoutInstall:
        def call_uapi(self, module: str, func: str, args: Any) -> dict[str, Any]:
            if (module, func) == ("SSL", "install_ssl"):
                raise UapiCallFailed(module, func, ["An unknown error occurred."], data=None)
            return user_api.transport.call_uapi(module, func, args)

    cert, key = make_cert([SUB])
    with pytest.raises(CpanelAPIError) as info:
        UserAPI(UnknownErrorWithoutInstall()).install_ssl(SUB, cert, key)
    assert "unknown error" in str(info.value)


def test_whm_fetch_ssl_vhosts(whm: WhmAPI, user_api: UserAPI, account: str) -> None:
    cert, key = make_cert([ADDON, f"www.{ADDON}"])
    installed = user_api.install_ssl(ADDON, cert, key)
    try:
        vhosts = [v for v in whm.fetch_ssl_vhosts() if v.user == account]
        by_name = {v.servername: v for v in vhosts}
        addon = next(v for v in vhosts if ADDON in v.domains)
        assert addon.servername in by_name and addon.type == "addon"
        assert addon.docroot.endswith(ADDON)
        assert addon.certificate is not None
        assert addon.certificate.id == installed.cert_id
        assert addon.certificate.subject_cn == ADDON  # sent as an object by the sandbox
        assert addon.certificate.not_after > 0 and addon.certificate.is_self_signed
    finally:
        user_api.delete_ssl(ADDON)


def test_install_ssl_unknown_error_that_did_install(sandbox: Any, user_api: UserAPI) -> None:
    from cpanel_sandbox import faults

    if "unknown_error" not in faults.FAULT_MODES:
        pytest.skip("the sandbox has no fault that answers 'unknown error' after installing")
    cert, key = make_cert([SUB])
    sandbox.set_fault("SSL::install_ssl", "unknown_error")
    result = user_api.install_ssl(SUB, cert, key)
    assert result.recovered and result.cert_id


def test_session_dns_zone(user_api: UserAPI) -> None:
    lines = user_api.parse_zone(DOMAIN)
    serial = soa_serial(lines)
    assert serial > 0
    record = NewRecord("_acme-challenge", 300, "TXT", ("token-value",))
    new_serial = user_api.mass_edit_zone(DOMAIN, serial, add=[record])
    assert new_serial > serial
    lines = user_api.parse_zone(DOMAIN)
    added = [
        line
        for line in lines
        if line.record_type == "TXT" and line.name.startswith("_acme-challenge")
    ]
    assert [line.data for line in added] == [("token-value",)]
    with pytest.raises(CpanelAPIError):
        user_api.mass_edit_zone(DOMAIN, serial, remove=[added[0].line_index])  # stale serial
    final = user_api.mass_edit_zone(DOMAIN, new_serial, remove=[added[0].line_index])
    assert final > new_serial
    assert not [
        line for line in user_api.parse_zone(DOMAIN) if line.name.startswith("_acme-challenge")
    ]


@pytest.mark.parametrize("mode", ["status0", "html", "truncated", "drop"])
def test_session_faults(sandbox: Any, user_api: UserAPI, mode: str) -> None:
    sandbox.set_fault("SSL::list_certs", mode)
    with pytest.raises(CpanelAPIError) as info:
        user_api.list_certs()
    assert isinstance(info.value, CpanelTransportError) == (mode != "status0")
    assert "<" not in str(info.value)
    user_api.list_certs()  # the session still works afterwards


def test_session_timeout(sandbox: Any, user_api: UserAPI) -> None:
    sandbox.set_fault("SSL::list_keys", "timeout")
    with pytest.raises(CpanelTransportError) as info:
        user_api.list_keys()
    assert "within 5 s" in str(info.value)


def test_session_logs_out_at_the_end_even_on_error(
    account: str, whm: WhmAPI, tls: PinnedTLS, settings: Settings
) -> None:
    kept: list[UserAPI] = []
    with (
        pytest.raises(RuntimeError),
        user_session(
            whm.create_user_session(account), tls, timeout=5, port=settings.cpanel_port
        ) as api,
    ):
        kept.append(api)
        assert api.list_domains().main_domain == DOMAIN
        raise RuntimeError("the worker failed")
    with pytest.raises(CpanelTransportError) as info:
        kept[0].list_domains()
    assert "HTTP 401" in str(info.value)


def test_session_login_url_used_once(
    account: str, whm: WhmAPI, tls: PinnedTLS, settings: Settings
) -> None:
    session = whm.create_user_session(account)
    with user_session(session, tls, timeout=5, port=settings.cpanel_port) as api:
        api.list_domains()
    with (
        pytest.raises(CpanelTransportError) as info,
        user_session(session, tls, timeout=5, port=settings.cpanel_port),
    ):
        pass
    assert "login" in str(info.value)


def test_session_wrong_pin(account: str, whm: WhmAPI, settings: Settings) -> None:
    wrong, _ = make_cert(["127.0.0.1"])
    with (
        pytest.raises(CpanelTransportError) as info,
        user_session(
            whm.create_user_session(account),
            PinnedTLS.from_pem(wrong),
            timeout=5,
            port=settings.cpanel_port,
        ),
    ):
        pass
    assert "pinned" in str(info.value)


# ---- command line (install-time calls without secrets) --------------------------------------


def test_command_line_transport(sandbox: Any, account: str) -> None:
    if not (sandbox.root / "usr/local/cpanel/bin/whmapi1").exists():
        pytest.skip("the sandbox has no whmapi1/uapi tools")
    cli = CommandLineTransport(sandbox.root, timeout=60)
    assert WhmAPI(cli).gethostname()
    assert account in {a.user for a in WhmAPI(cli).listaccts()}
    as_user = CommandLineTransport(sandbox.root, user=account, timeout=60)
    assert UserAPI(as_user).list_domains().main_domain == DOMAIN
    cert, key = make_cert([DOMAIN])
    with pytest.raises(CpanelTransportError) as info:
        UserAPI(as_user).install_ssl(DOMAIN, cert, key)
    assert "command line" in str(info.value)


# ---- LiveAPI, in a CGI run by the page host as the user -------------------------------------

LIVE_CGI = """#!{python}
import json, os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, {repo!r})
from letsencrypt_cpanel.cpanel import build_liveapi_from_env
from letsencrypt_cpanel.errors import CpanelAPIError, CpanelTransportError

out = {{"uid": os.getuid()}}
request = json.loads(sys.stdin.read(int(os.environ.get("CONTENT_LENGTH") or 0)) or "{{}}")
api = build_liveapi_from_env(os.environ, timeout=float(request.get("timeout", 60)))
try:
    out["vhosts"] = [[v.domain, v.kind, list(v.names)] for v in api.domains_data()]
    out["main"] = api.list_domains().main_domain
    out["single"] = api.single_domain_data(request["domain"]).servername
    out["feature"] = api.has_feature("sslinstall")
    out["home"] = api.get_user_information("home")["home"]
    if request.get("cert"):
        result = api.install_ssl(request["domain"], request["cert"], request["key"])
        out["installed"] = [result.cert_id, result.key_id]
        out["hosts"] = [[h.servername, h.certificate.id] for h in api.installed_hosts()]
        out["certs"] = [c.id for c in api.list_certs()]
        out["keys"] = [k.id for k in api.list_keys()]
        api.delete_ssl(request["domain"])
        api.delete_cert(result.cert_id)
        api.delete_key(result.key_id)
        out["after"] = [h.servername for h in api.installed_hosts()]
    out["zone_serial"] = len(api.parse_zone(out["main"]))
    try:
        api.list_certs()
    except CpanelAPIError as exc:
        out["fault"] = [type(exc).__name__, isinstance(exc, CpanelTransportError), str(exc)]
except CpanelAPIError as exc:
    out["error"] = str(exc)
sys.stdout.write("Content-Type: application/json\\r\\n\\r\\n" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def live_cgi_path(sandbox: Any) -> str:
    text = LIVE_CGI.format(python=sys.executable, repo=str(REPO))
    sandbox.install_cgi("cpanel", "clientapi_test/client.live.cgi", text)
    return "/frontend/jupiter/clientapi_test/client.live.cgi"


def run_live_cgi(sandbox: Any, account: str, path: str, request: dict[str, Any]) -> Any:
    logged_in = sandbox.login(account)
    reply = sandbox.request(
        logged_in.port,
        "POST",
        logged_in.token + path,
        body=json.dumps(request).encode(),
        headers={"Cookie": logged_in.cookie, "Content-Type": "application/json"},
        timeout=60,
    )
    assert reply.status == 200, reply.body[:500]
    return reply.json()


def test_liveapi_as_the_user(sandbox: Any, account: str, live_cgi_path: str) -> None:
    cert, key = make_cert([SUB])
    out = run_live_cgi(sandbox, account, live_cgi_path, {"domain": SUB, "cert": cert, "key": key})
    assert "error" not in out, out.get("error")
    assert out["uid"] != 0
    vhosts = {d: (kind, names) for d, kind, names in out["vhosts"]}
    assert vhosts[DOMAIN][0] == "main" and PARKED in vhosts[DOMAIN][1]
    assert vhosts[ADDON][0] == "addon"
    assert out["main"] == DOMAIN and out["single"] == SUB and out["feature"] is True
    assert out["home"].endswith(f"/home/{USER}")
    cert_id, key_id = out["installed"]
    assert [SUB, cert_id] in out["hosts"]
    assert cert_id in out["certs"] and key_id in out["keys"]
    assert SUB not in out["after"]
    assert out["zone_serial"] > 0
    assert "fault" not in out


@pytest.mark.parametrize("mode", ["status0", "html", "truncated", "drop", "timeout"])
def test_liveapi_faults(sandbox: Any, account: str, live_cgi_path: str, mode: str) -> None:
    # The CGI's last call is list_certs: the switch makes exactly that one misbehave.
    sandbox.set_fault("SSL::list_certs", mode)
    out = run_live_cgi(sandbox, account, live_cgi_path, {"domain": DOMAIN, "timeout": 2})
    assert "error" not in out, out.get("error")
    name, is_transport, text = out["fault"]
    assert is_transport == (mode != "status0"), (name, text)
    assert "<" not in text
