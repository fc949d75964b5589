"""The users' sites: HTTP by Host with .htaccess redirects, HTTPS by SNI with installed certs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from cpanel_sandbox import accounts
from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.pki import TestCA


@pytest.fixture(scope="module")
def site(sandbox: RunningSandbox) -> str:
    sandbox.add_user("siteone", "siteone.test", subs=("blog.siteone.test",))
    sandbox.add_user("sitetwo", "sitetwo.test")
    return "siteone.test"


def docroot(sandbox: RunningSandbox, name: str) -> Path:
    for vhost in accounts.site_vhosts(sandbox.root):
        if name in vhost.names or name == vhost.servername:
            return vhost.docroot
    raise AssertionError(f"no vhost for {name}")


def test_http_routes_by_host(sandbox: RunningSandbox, site: str) -> None:
    challenge = docroot(sandbox, site) / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True, exist_ok=True)
    (challenge / "tok1").write_text("tok1.thumb")
    other = docroot(sandbox, "sitetwo.test") / "hello.txt"
    other.write_text("two")

    assert sandbox.get_site(site, "/.well-known/acme-challenge/tok1").body == b"tok1.thumb"
    assert sandbox.get_site(f"www.{site}", "/.well-known/acme-challenge/tok1").status == 200
    assert sandbox.get_site("sitetwo.test", "/hello.txt").body == b"two"
    assert sandbox.get_site("sitetwo.test", "/.well-known/acme-challenge/tok1").status == 404
    assert sandbox.get_site(site, "/hello.txt").status == 404
    assert sandbox.get_site("unknown.test", "/hello.txt").status == 404
    assert sandbox.get_site(site, "/../../etc/passwd").status == 404


def test_htaccess_redirect(sandbox: RunningSandbox, site: str) -> None:
    root = docroot(sandbox, "blog.siteone.test")
    root.mkdir(parents=True, exist_ok=True)
    (root / ".htaccess").write_text(
        "# moved\nRedirect 301 /.well-known/acme-challenge https://elsewhere.test/acme\n"
        "RedirectMatch temp ^/old/(.*)$ http://new.test/$1\n"
    )
    try:
        moved = sandbox.get_site("blog.siteone.test", "/.well-known/acme-challenge/abc")
        assert moved.status == 301
        assert moved.header("Location") == "https://elsewhere.test/acme/abc"
        old = sandbox.get_site("blog.siteone.test", "/old/page.html")
        assert old.status == 302
        assert old.header("Location") == "http://new.test/page.html"
        assert sandbox.get_site("blog.siteone.test", "/other").status == 404
    finally:
        (root / ".htaccess").unlink()


def issue(names: list[str]) -> tuple[str, str, str, x509.Certificate]:
    """(certificate, key, CA bundle) PEMs from a throwaway CA, and the certificate parsed."""
    leaf = TestCA().leaf(names)
    return leaf.cert, leaf.key, leaf.chain, x509.load_pem_x509_certificate(leaf.cert.encode())


def test_https_serves_installed_cert_by_sni_at_once(sandbox: RunningSandbox, site: str) -> None:
    sandbox.add_user("sslone", "sslone.test")
    service = x509.load_pem_x509_certificate(sandbox.service_cert_pem().encode())
    assert sandbox.fetch_site_cert("sslone.test") == service

    cert_pem, key_pem, bundle, cert = issue(["sslone.test", "www.sslone.test"])
    session = sandbox.login("sslone")
    args = {"domain": "sslone.test", "cert": cert_pem, "key": key_pem, "cabundle": bundle}
    installed = sandbox.uapi(session, "SSL", "install_ssl", args).json()
    assert installed["status"] == 1, installed["errors"]
    assert sandbox.fetch_site_cert("sslone.test") == cert
    assert sandbox.fetch_site_cert("www.sslone.test") == cert
    assert sandbox.fetch_site_cert("sitetwo.test") == service

    deleted = sandbox.uapi(session, "SSL", "delete_ssl", {"domain": "sslone.test"}).json()
    assert deleted["status"] == 1, deleted["errors"]
    assert sandbox.fetch_site_cert("sslone.test") == service
