"""selfcheck.SelfCheck with challtestsrv as the resolver, and the WebrootSolver's file handling."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt_cpanel.challenges import WebrootSolver
from letsencrypt_cpanel.errors import ChallengeFailed, SelfCheckFailed
from letsencrypt_cpanel.selfcheck import SelfCheck, parse_resolver
from tests.fixtures.pebble import (
    DocrootServer,
    PebbleInstance,
    free_port,
    running_pebble,
    serve_docroot,
)

pytestmark = pytest.mark.pebble

TOKEN = "tok3n_-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef"
KEY_AUTH = f"{TOKEN}.thumbprint-of-the-account-key-0123456789"


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PebbleInstance]:
    """Only challtestsrv is used here (as the resolver); Pebble comes along."""
    with running_pebble(tmp_path_factory.mktemp("pebble-selfcheck"), http_port=free_port()) as inst:
        yield inst


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    path = tmp_path / "public_html"
    path.mkdir()
    return path


@pytest.fixture
def site(dns: PebbleInstance, docroot: Path) -> Iterator[DocrootServer]:
    with serve_docroot(dns.http_port, docroot) as server:
        yield server


@pytest.fixture
def check(dns: PebbleInstance) -> SelfCheck:
    return SelfCheck(resolvers=[dns.dns_server], http_port=dns.http_port, timeout=1.0)


def _publish(docroot: Path, content: str = KEY_AUTH) -> None:
    folder = docroot / ".well-known" / "acme-challenge"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TOKEN).write_text(content + "\n")


def _fails(check: SelfCheck, name: str) -> SelfCheckFailed:
    with pytest.raises(SelfCheckFailed) as caught:
        check.verify(name, TOKEN, KEY_AUTH)
    assert caught.value.domain == name
    assert KEY_AUTH not in str(caught.value)  # never echoed back
    return caught.value


def test_served_token_passes(check: SelfCheck, site: DocrootServer, docroot: Path) -> None:
    _publish(docroot)
    check.verify("good.example.com", TOKEN, KEY_AUTH)
    assert site.requests_seen == [
        (f"/.well-known/acme-challenge/{TOKEN}", site.requests_seen[0][1])
    ]


def test_aaaa_where_nothing_listens_is_named(
    dns: PebbleInstance, check: SelfCheck, site: DocrootServer, docroot: Path
) -> None:
    _publish(docroot)
    name = "stale-aaaa.example.com"
    dns.add_aaaa(name, ["::1"])  # the site listens on 127.0.0.1 only
    try:
        err = _fails(check, name)
    finally:
        dns.clear_aaaa(name)
    assert "[::1]" in err.detail
    assert "AAAA record points elsewhere" in err.detail
    assert "127.0.0.1" not in err.detail  # the A address served the token


def test_every_a_address_is_checked(
    dns: PebbleInstance, check: SelfCheck, site: DocrootServer, docroot: Path
) -> None:
    _publish(docroot)
    name = "two-a.example.com"
    dns.add_a(name, ["127.0.0.1", "127.0.0.3"])
    try:
        err = _fails(check, name)
    finally:
        dns.clear_a(name)
    assert "127.0.0.3" in err.detail and "connection refused" in err.detail
    assert "the A record points elsewhere" in err.detail


def test_other_content(check: SelfCheck, site: DocrootServer, docroot: Path) -> None:
    _publish(docroot, "<html>Site under maintenance</html>")
    err = _fails(check, "other.example.com")
    assert "other content was served" in err.detail and "maintenance" in err.detail


def test_not_found(check: SelfCheck, site: DocrootServer) -> None:
    err = _fails(check, "missing.example.com")
    assert "HTTP 404" in err.detail and "document root" in err.detail


def test_redirect_is_followed_as_the_ca_follows_it(
    check: SelfCheck, site: DocrootServer, docroot: Path
) -> None:
    # A site that moved its files (or forces another path) still validates at the CA, which
    # follows redirects on ports 80/443: the self-check must not refuse it.
    path = f"/.well-known/acme-challenge/{TOKEN}"
    site.redirects[path] = f"http://moved.example.com/new-home{path}"
    target = docroot / "new-home" / ".well-known" / "acme-challenge"
    target.mkdir(parents=True)
    (target / TOKEN).write_text(KEY_AUTH)
    check.verify("redirect.example.com", TOKEN, KEY_AUTH)
    assert [p for p, _ in site.requests_seen] == [path, f"/new-home{path}"]


def test_redirect_to_a_missing_file_names_the_chain(check: SelfCheck, site: DocrootServer) -> None:
    path = f"/.well-known/acme-challenge/{TOKEN}"
    site.redirects[path] = f"http://moved.example.com/gone{path}"
    err = _fails(check, "redirect.example.com")
    assert (
        "redirects (302 to http://moved.example.com/gone/.well-known/acme-challenge/<token>)"
        in (err.detail)
    )
    assert "HTTP 404" in err.detail and ".htaccess" in err.detail
    assert TOKEN not in err.detail


def test_redirect_to_a_port_the_ca_never_uses(check: SelfCheck, site: DocrootServer) -> None:
    path = f"/.well-known/acme-challenge/{TOKEN}"
    site.redirects[path] = f"https://moved.example.com:8443{path}"
    err = _fails(check, "redirect.example.com")
    assert "only follows redirects to ports 80 and 443, not 8443" in err.detail
    assert len(site.requests_seen) == 1


def test_redirect_loop_is_cut(check: SelfCheck, site: DocrootServer) -> None:
    path = f"/.well-known/acme-challenge/{TOKEN}"
    site.redirects[path] = f"http://loop.example.com{path}"
    err = _fails(check, "loop.example.com")
    assert "more than 10 redirects" in err.detail


def test_servfail_says_dns_is_broken(dns: PebbleInstance, check: SelfCheck) -> None:
    name = "servfail.example.com"
    dns._mgmt("set-servfail", {"host": name})
    try:
        err = _fails(check, name)
    finally:
        dns._mgmt("clear-servfail", {"host": name})
    assert "lookup failed" in err.detail


def test_silent_server_times_out(dns: PebbleInstance) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)  # accepts connections (backlog) but never answers
        port = silent.getsockname()[1]
        check = SelfCheck(resolvers=[dns.dns_server], http_port=port, timeout=0.3)
        err = _fails(check, "silent.example.com")
    assert "no answer within 0.3 s" in err.detail


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:8053", ("127.0.0.1", 8053)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_parse_resolver(spec: str, parsed: tuple[str, int]) -> None:
    assert parse_resolver(spec) == parsed


@pytest.mark.parametrize("bad", ["ns1.example.com", "127.0.0.1:0", "127.0.0.1:x"])
def test_parse_resolver_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_resolver(bad)


# --- WebrootSolver ------------------------------------------------------------------------------


def test_solver_writes_and_cleans_up(docroot: Path) -> None:
    solver = WebrootSolver({"bücher.example": docroot})
    old = os.umask(0o077)  # a strict umask must not hide the file from the web server
    try:
        solver.present("xn--bcher-kva.example", TOKEN, KEY_AUTH)
    finally:
        os.umask(old)
    folder = docroot / ".well-known" / "acme-challenge"
    token_file = folder / TOKEN
    assert token_file.read_text() == KEY_AUTH
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o644
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o755
    solver.cleanup("xn--bcher-kva.example", TOKEN)
    assert not (docroot / ".well-known").exists()


def test_solver_keeps_folders_it_did_not_make(docroot: Path) -> None:
    (docroot / ".well-known").mkdir()
    (docroot / ".well-known" / "security.txt").write_text("contact")
    solver = WebrootSolver({"a.example": docroot, "b.example": docroot})
    solver.present("a.example", TOKEN, KEY_AUTH)
    solver.present("b.example", TOKEN[::-1], "other")
    solver.cleanup("a.example", TOKEN)
    assert (docroot / ".well-known" / "acme-challenge" / TOKEN[::-1]).exists()
    solver.cleanup("b.example", TOKEN[::-1])
    solver.cleanup("b.example", TOKEN[::-1])  # twice is fine
    assert not (docroot / ".well-known" / "acme-challenge").exists()
    assert (docroot / ".well-known" / "security.txt").read_text() == "contact"


@pytest.mark.parametrize("link_at", [".well-known", ".well-known/acme-challenge"])
def test_solver_refuses_symlinked_folders(docroot: Path, tmp_path: Path, link_at: str) -> None:
    target = tmp_path / "victim"
    target.mkdir()
    link = docroot / link_at
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    solver = WebrootSolver({"link.example": docroot})
    with pytest.raises(ChallengeFailed) as caught:
        solver.present("link.example", TOKEN, KEY_AUTH)
    assert caught.value.kind == "webroot"
    assert "symbolic link" in caught.value.detail
    assert list(target.iterdir()) == []


def test_solver_replaces_a_planted_token_link(docroot: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = docroot / ".well-known" / "acme-challenge"
    folder.mkdir(parents=True)
    (folder / TOKEN).symlink_to(victim)
    solver = WebrootSolver({"plant.example": docroot})
    solver.present("plant.example", TOKEN, KEY_AUTH)
    assert victim.read_text() == "precious"
    assert not (folder / TOKEN).is_symlink()
    assert (folder / TOKEN).read_text() == KEY_AUTH
    solver.cleanup("plant.example", TOKEN)
    assert not (folder / TOKEN).exists() and victim.exists()


@pytest.mark.parametrize("token", ["../../../etc/passwd_xxxxxxxxx", "short", "a/b" * 10])
def test_solver_refuses_a_malformed_token(docroot: Path, token: str) -> None:
    with pytest.raises(ChallengeFailed) as caught:
        WebrootSolver({"t.example": docroot}).present("t.example", token, KEY_AUTH)
    assert caught.value.kind == "malformed"


def test_solver_needs_a_docroot_for_the_name(docroot: Path) -> None:
    with pytest.raises(ChallengeFailed, match="no document root"):
        WebrootSolver({"a.example": docroot}).present("b.example", TOKEN, KEY_AUTH)
    with pytest.raises(ChallengeFailed, match="cannot be opened"):
        WebrootSolver({"a.example": docroot / "gone"}).present("a.example", TOKEN, KEY_AUTH)


def test_solver_check_runs_the_self_check(
    check: SelfCheck, site: DocrootServer, docroot: Path
) -> None:
    solver = WebrootSolver({"solver.example.com": docroot}, self_check=check)
    solver.present("solver.example.com", TOKEN, KEY_AUTH)
    solver.check("solver.example.com", TOKEN, KEY_AUTH)
    with pytest.raises(SelfCheckFailed):
        solver.check("solver.example.com", TOKEN, KEY_AUTH + "x")
    solver.cleanup("solver.example.com", TOKEN)
    WebrootSolver({"x.example": docroot}).check("x.example", TOKEN, KEY_AUTH)  # no check: no-op


def test_name_without_address(dns: PebbleInstance, check: SelfCheck) -> None:
    dns._mgmt("set-default-ipv4", {"ip": ""})
    try:
        err = _fails(check, "nowhere.example.com")
    finally:
        dns._mgmt("set-default-ipv4", {"ip": "127.0.0.1"})
    assert "no A or AAAA record" in err.detail
