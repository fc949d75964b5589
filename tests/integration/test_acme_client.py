"""acme_client against the real Pebble (tests/fixtures/pebble.py).

These tests run their own Pebble whose http-01 port is a fresh free port, and serve the docroot
there themselves, so `site_http_port` stays free for the sandbox's own tests.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from letsencrypt_cpanel import acme_client, keys
from letsencrypt_cpanel.challenges import WebrootSolver
from letsencrypt_cpanel.config import KEY_TYPES
from letsencrypt_cpanel.errors import AcmeError, ChallengeFailed, SelfCheckFailed
from letsencrypt_cpanel.selfcheck import USER_AGENT, SelfCheck
from tests.fixtures.pebble import (
    SHORT_VALIDITY_SECONDS,
    DocrootServer,
    PebbleInstance,
    free_port,
    running_pebble,
    serve_docroot,
)

pytestmark = pytest.mark.pebble

BLOCKED = "blocked.example"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PebbleInstance]:
    with running_pebble(
        tmp_path_factory.mktemp("pebble-acme"),
        http_port=free_port(),
        extra_config={"domainBlocklist": [BLOCKED]},
    ) as inst:
        yield inst


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    path = tmp_path / "public_html"
    path.mkdir()
    return path


@pytest.fixture
def site(ca: PebbleInstance, docroot: Path) -> Iterator[DocrootServer]:
    with serve_docroot(ca.http_port, docroot) as server:
        yield server


def _solver(ca: PebbleInstance, docroot: Path, names: list[str]) -> WebrootSolver:
    check = SelfCheck(resolvers=[ca.dns_server], http_port=ca.http_port, timeout=2.0)
    return WebrootSolver({n: docroot for n in names}, self_check=check)


def _session(
    ca: PebbleInstance, account: acme_client.AcmeAccount | None = None
) -> acme_client.AcmeSession:
    return acme_client.connect(ca.directory_url, ca_bundle=ca.ca_bundle, account=account)


def _assert_issued(
    ca: PebbleInstance, issued: acme_client.IssuedCertificate, key_pem: str, names: list[str]
) -> None:
    facts = keys.certificate_facts(issued.cert_pem)
    assert facts.names == tuple(names) or sorted(facts.names) == sorted(names)
    assert keys.key_matches_certificate(key_pem, issued.cert_pem)
    assert issued.fullchain_pem.startswith(issued.cert_pem.strip())
    leaf = keys.load_certificate(issued.cert_pem)
    intermediate = keys.load_certificate(issued.chain_pem)
    root = keys.load_certificate(ca.root_pem())
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    assert issued.order_url.startswith(ca.directory_url.rsplit("/", 1)[0])


def _no_challenge_files_left(docroot: Path) -> bool:
    return not (docroot / ".well-known").exists()


def test_issue_one_name(ca: PebbleInstance, site: DocrootServer, docroot: Path) -> None:
    session = _session(ca)
    account = session.ensure_account("admin@example.com")
    assert account.url.startswith("https://127.0.0.1")
    assert keys.key_type_of(account.key_pem) == "ecdsa:p-256"
    key = keys.generate_private_key()
    steps: list[str] = []
    issued = session.obtain_certificate(
        key,
        ["one.example.com"],
        _solver(ca, docroot, ["one.example.com"]),
        deadline=30,
        progress=steps.append,
    )
    _assert_issued(ca, issued, key, ["one.example.com"])
    assert steps[0] == "order" and steps[-2:] == ["finalizing", "downloading"]
    assert "validating one.example.com" in steps
    assert _no_challenge_files_left(docroot)
    # Pebble's VA did fetch the token (3 requests), after our own look.
    agents = [ua for _path, ua in site.requests_seen]
    assert agents[0] == USER_AGENT and len(agents) >= 2


def test_issue_several_names_and_a_utf8_name(
    ca: PebbleInstance, site: DocrootServer, docroot: Path
) -> None:
    names = ["multi.example.com", "www.multi.example.com", "bücher.example.com"]
    key = keys.generate_private_key("ecdsa:p-256")
    issued = _session(ca).obtain_certificate(key, names, _solver(ca, docroot, names), deadline=30)
    wire = [keys.to_idna(n) for n in names]
    assert sorted(keys.certificate_facts(issued.cert_pem).names) == sorted(wire)
    _assert_issued(ca, issued, key, wire)
    assert _no_challenge_files_left(docroot)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_each_key_type(
    ca: PebbleInstance, site: DocrootServer, docroot: Path, key_type: str
) -> None:
    name = f"{key_type.replace(':', '-')}.example.com"
    key = keys.generate_private_key(key_type)
    issued = _session(ca).obtain_certificate(key, [name], _solver(ca, docroot, [name]), deadline=30)
    _assert_issued(ca, issued, key, [name])
    assert keys.certificate_facts(issued.cert_pem).key_type == key_type


def test_rsa_account_key_works(ca: PebbleInstance, site: DocrootServer, docroot: Path) -> None:
    # An account key the CA does not know (a record from another plugin, a restarted CA) is
    # registered as it is: RSA keys sign with RS256.
    rsa_key = keys.generate_private_key("rsa:2048")
    unknown = acme_client.AcmeAccount(ca.directory_url, rsa_key, "")
    session = _session(ca, unknown)
    account = session.ensure_account(None)
    assert account.key_pem == rsa_key and account.url
    name = "rsa-account.example.com"
    key = keys.generate_private_key("ecdsa:p-384")
    issued = session.obtain_certificate(key, [name], _solver(ca, docroot, [name]), deadline=30)
    _assert_issued(ca, issued, key, [name])
    assert _session(ca, account).ensure_account(None) == account


def test_existing_account_is_reused(ca: PebbleInstance) -> None:
    first = _session(ca).ensure_account("reuse@example.com")
    again = _session(ca, account=first).ensure_account("reuse@example.com")
    assert again == first


def test_account_gone_is_registered_again(ca: PebbleInstance, tmp_path: Path) -> None:
    first = _session(ca).ensure_account(None)
    # A restarted Pebble forgets every account: same situation as a fresh instance that is
    # handed an account it never saw.
    with running_pebble(tmp_path / "restarted", http_port=ca.http_port) as fresh:
        stale = replace(first, directory_url=fresh.directory_url)
        session = acme_client.connect(fresh.directory_url, ca_bundle=fresh.ca_bundle, account=stale)
        renewed = session.ensure_account(None)
        assert renewed.url != first.url
        assert renewed.url.startswith(fresh.directory_url.rsplit("/", 1)[0])
        assert session.account == renewed
        # and the new account is usable at once
        assert (
            acme_client.connect(
                fresh.directory_url, ca_bundle=fresh.ca_bundle, account=renewed
            ).ensure_account(None)
            == renewed
        )


def test_five_issuances_in_a_row_survive_half_the_nonces_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rejected: list[str] = []
    original = acme_client._PatientNetwork._post_once

    def counting(self: acme_client._PatientNetwork, url: str, *args: Any, **kw: Any) -> Any:
        try:
            return original(self, url, *args, **kw)
        except acme_client._Problem as problem:
            rejected.append(f"{problem.error.code} {url}")
            raise

    monkeypatch.setattr(acme_client._PatientNetwork, "_post_once", counting)
    port = free_port()
    docroot = tmp_path / "docroot"
    docroot.mkdir()
    with (
        running_pebble(tmp_path / "nonce50", http_port=port, nonce_reject=50) as ca,
        serve_docroot(port, docroot),
    ):
        session = _session(ca)
        session.ensure_account(None)
        for i in range(5):
            names = [f"n{i}.example.com", f"www.n{i}.example.com"]
            key = keys.generate_private_key("ecdsa:p-256")
            issued = session.obtain_certificate(
                key, names, _solver(ca, docroot, names), deadline=30
            )
            _assert_issued(ca, issued, key, names)
    # The CA did reject nonces on the way, on several kinds of request, and all were retried.
    assert len(rejected) >= 5
    assert {r.split()[0] for r in rejected} == {"badNonce"}
    paths = {r.split()[1].split("/")[3] for r in rejected}
    print(f"\nbadNonce retried {len(rejected)} times, on {sorted(paths)}")
    assert len(paths) >= 3


def test_shared_nonce50_fixture_registers(pebble_nonce50: PebbleInstance) -> None:
    for _ in range(3):
        account = _session(pebble_nonce50).ensure_account(None)
        assert _session(pebble_nonce50, account).ensure_account(None) == account


class _Meddling(WebrootSolver):
    """A site that serves something else than the file the solver wrote."""

    meddle: str = "content"
    site: DocrootServer | None = None

    def present(self, domain: str, token: str, key_authorization: str) -> None:
        super().present(domain, token, key_authorization)
        docroot = self.docroot_for(domain)
        path = f"/.well-known/acme-challenge/{token}"
        if self.meddle == "content":
            (docroot / path.lstrip("/")).write_text("<html>maintenance</html>")
        elif self.meddle == "redirect" and self.site is not None:
            self.site.redirects[path] = f"https://{domain}{path}"


@pytest.mark.parametrize(
    ("meddle", "expected"),
    [("content", "other content"), ("redirect", "redirects (302 to https://")],
)
def test_selfcheck_failure_stops_before_the_challenge_is_answered(
    ca: PebbleInstance, site: DocrootServer, docroot: Path, meddle: str, expected: str
) -> None:
    name = f"broken-{meddle}.example.com"
    check = SelfCheck(resolvers=[ca.dns_server], http_port=ca.http_port, timeout=2.0)
    solver = _Meddling({name: docroot}, self_check=check)
    solver.meddle, solver.site = meddle, site
    session = _session(ca)
    with pytest.raises(SelfCheckFailed) as caught:
        session.obtain_certificate(keys.generate_private_key(), [name], solver, deadline=30)
    assert caught.value.domain == name
    assert expected in caught.value.detail
    assert "<token>" in caught.value.detail or meddle == "content"
    # Only our self-check fetched the token: Pebble was never asked to validate.
    assert site.requests_seen and all(ua == USER_AGENT for _p, ua in site.requests_seen)
    assert _no_challenge_files_left(docroot)


def test_ca_validation_failure_is_a_challenge_failed(
    ca: PebbleInstance, site: DocrootServer, tmp_path: Path
) -> None:
    # No self-check, and the file goes to a folder the site does not serve: the CA's 404.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    name = "wrong-docroot.example.com"
    solver = WebrootSolver({name: elsewhere})
    with pytest.raises(ChallengeFailed) as caught:
        _session(ca).obtain_certificate(keys.generate_private_key(), [name], solver, deadline=30)
    assert not isinstance(caught.value, SelfCheckFailed)
    assert caught.value.domain == name
    assert caught.value.kind == "unauthorized"
    assert ".htaccess" in str(caught.value)
    assert isinstance(caught.value.__cause__, Exception)
    assert not (elsewhere / ".well-known").exists()


def test_rejected_identifier_is_a_clear_error(
    ca: PebbleInstance, site: DocrootServer, docroot: Path
) -> None:
    names = ["ok.example.com", f"www.{BLOCKED}"]
    with pytest.raises(AcmeError) as caught:
        _session(ca).obtain_certificate(
            keys.generate_private_key(), names, _solver(ca, docroot, names), deadline=30
        )
    assert caught.value.kind == "rejectedIdentifier"
    assert f"www.{BLOCKED}" in str(caught.value)
    assert "Remove it from the certificate" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_unreachable_ca_is_a_network_error() -> None:
    with pytest.raises(AcmeError) as caught:
        acme_client.connect(f"https://127.0.0.1:{free_port()}/dir")
    assert caught.value.kind == "network"


def test_parse_retry_after() -> None:
    import datetime as dt

    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert acme_client.parse_retry_after("120", "", now) == now + dt.timedelta(seconds=120)
    assert acme_client.parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", "", now) == dt.datetime(
        2026, 10, 21, 7, 28, tzinfo=dt.timezone.utc
    )
    detail = (
        "too many certificates (5) already issued for this exact set of identifiers in the "
        "last 168h0m0s, retry after 2026-01-03 04:05:06 UTC: see https://letsencrypt.org/docs/"
    )
    assert acme_client.parse_retry_after(None, detail, now) == dt.datetime(
        2026, 1, 3, 4, 5, 6, tzinfo=dt.timezone.utc
    )
    assert acme_client.parse_retry_after(None, "slow down", now) is None


def test_time_per_issuance(ca: PebbleInstance, site: DocrootServer, docroot: Path) -> None:
    session = _session(ca)
    session.ensure_account(None)
    key = keys.generate_private_key("ecdsa:p-256")
    times = []
    for i in range(5):
        names = [f"t{i}.example.com"]
        start = time.perf_counter()
        session.obtain_certificate(key, names, _solver(ca, docroot, names), deadline=30)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"\nissuance times (s): {', '.join(f'{t:.3f}' for t in times)}; median {median:.3f}")
    assert median < 0.4


def test_revoke(ca: PebbleInstance, site: DocrootServer, docroot: Path) -> None:
    session = _session(ca)
    name = "revoke.example.com"
    issued = session.obtain_certificate(
        keys.generate_private_key(), [name], _solver(ca, docroot, [name]), deadline=30
    )
    session.revoke(issued.cert_pem, reason=4)
    status = ca.cert_status(keys.certificate_facts(issued.cert_pem).serial_hex)
    assert status["Status"] == "Revoked"
    x509.load_pem_x509_certificate(status["Certificate"].encode())


def test_shared_fixtures_answer(pebble: PebbleInstance, pebble_short: PebbleInstance) -> None:
    for inst in (pebble, pebble_short):
        account = _session(inst).ensure_account(None)
        assert account.directory_url == inst.directory_url
        assert inst.root_pem().startswith("-----BEGIN CERTIFICATE-----")
    config = (pebble_short.workdir / "pebble-config.json").read_text()
    assert f'"certificateValidityPeriod": {SHORT_VALIDITY_SECONDS}' in config


def test_short_validity(tmp_path: Path) -> None:
    port = free_port()
    docroot = tmp_path / "docroot"
    docroot.mkdir()
    with (
        running_pebble(
            tmp_path / "short", http_port=port, validity_seconds=SHORT_VALIDITY_SECONDS
        ) as ca,
        serve_docroot(port, docroot),
    ):
        name = "short.example.com"
        key = keys.generate_private_key("ecdsa:p-256")
        issued = _session(ca).obtain_certificate(
            key, [name], _solver(ca, docroot, [name]), deadline=30
        )
    lifetime = keys.certificate_facts(issued.cert_pem).lifetime
    assert abs(lifetime.total_seconds() - SHORT_VALIDITY_SECONDS) < 3600


def test_waiting_for_validation_polls_the_order_not_every_authorization(
    ca: PebbleInstance, docroot: Path, site: DocrootServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A whole server's AutoSSL pays for every request twice (here and at the CA): ten names
    # must cost ten authorization reads (for the tokens), not ten more per round of waiting.
    posted: list[str] = []
    original = acme_client._PatientNetwork._post_once

    def recording(self: acme_client._PatientNetwork, url: str, *args: Any, **kw: Any) -> Any:
        posted.append(url.split("/")[3])
        return original(self, url, *args, **kw)

    monkeypatch.setattr(acme_client._PatientNetwork, "_post_once", recording)
    names = [f"poll{i}.example.com" for i in range(10)]
    key = keys.generate_private_key("ecdsa:p-256")
    session = _session(ca)
    session.ensure_account(None)
    posted.clear()
    issued = session.obtain_certificate(key, names, _solver(ca, docroot, names), deadline=30)
    _assert_issued(ca, issued, key, names)
    assert posted.count("authZ") == len(names)
    assert posted.count("chalZ") == len(names)
    # The order is read once a round; how many rounds depends on the CA's speed (a busy machine).
    assert posted.count("my-order") >= 1
