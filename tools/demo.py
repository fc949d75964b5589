"""`make demo`: a sandboxed cPanel server, a real ACME CA, and a certificate issued and proven.

Starts Pebble and pebble-challtestsrv, builds a sandbox with two demo users, issues a certificate
for a demo site through the product's own path (`le-cp` as root -> a WHM user session -> a worker
running as the user -> the same issuance code the cPanel page runs), proves it with a TLS handshake
(SNI) whose chain verifies against Pebble's root, installs the plugin's cPanel and WHM pages (with
the plugin's feature on), prints a summary, login URLs and the pages' URLs, and keeps serving
until Ctrl-C. With DEMO_ONCE=1 it exits after the summary: 0 when the proof held.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography import x509  # noqa: E402

from tests.fixtures import plugin_pages  # noqa: E402
from tests.fixtures.lecp import configure  # noqa: E402
from tests.fixtures.pebble import free_port, start_pebble  # noqa: E402
from tests.fixtures.sandbox import RunningSandbox, run_cli, start_sandbox  # noqa: E402
from tests.whm import pages as whm_pages  # noqa: E402

DEMO_ROOT = Path("/var/tmp/letsencrypt-cpanel-demo")
SITE = "shop.demo.test"
NAMES = [SITE, f"www.{SITE}"]


def prove(https_port: int, name: str, root_pem: str) -> x509.Certificate:
    """A TLS handshake with SNI `name`; the chain must verify against Pebble's root and the
    certificate must be valid for `name`. Raises ssl.SSLError otherwise."""
    ctx = ssl.create_default_context(cadata=root_pem)
    with socket.create_connection(("127.0.0.1", https_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def install_plugin_pages(sandbox: RunningSandbox) -> None:
    """What install.sh does for the pages: the cPanel page with its feature on in the default
    feature list, and the WHM page (the same helpers the page tests use)."""
    plugin_pages.install_cpanel_page(sandbox)
    plugin_pages.enable_plugin_feature(sandbox)
    whm_pages.install_whm_page(sandbox)


def page_links(sandbox: RunningSandbox, user: str, service: str, page: str) -> tuple[str, str]:
    """A one-time login URL and the plugin page's URL in the session it opens.

    The login URL lands on the home (which lists the plugin); the page URL works in the same
    browser once the login URL has set the session cookie.
    """
    login = sandbox.login_url(user, service)
    parts = urlsplit(login)
    token = "/" + parts.path.lstrip("/").split("/", 1)[0]
    return login, f"{parts.scheme}://{parts.netloc}{token}{page}"


def main() -> int:
    if os.geteuid() != 0:
        print("make demo must run as root (the sandbox drops to throwaway uids).", file=sys.stderr)
        return 2
    once = os.environ.get("DEMO_ONCE") == "1"
    if DEMO_ROOT.exists():
        shutil.rmtree(DEMO_ROOT)
    DEMO_ROOT.mkdir(mode=0o755, parents=True)
    DEMO_ROOT.chmod(0o755)
    # A free port rather than 5002: a demo must not collide with a test run or another sandbox.
    http_port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pebble-", dir="/var/tmp"))
    print(f"Starting Pebble (ACME) and the cPanel sandbox under {DEMO_ROOT} ...")
    pebble = start_pebble(workdir, http_port=http_port)
    sandbox = None
    try:
        run_cli("init", str(DEMO_ROOT))
        sandbox = start_sandbox(DEMO_ROOT, http_port=http_port)
        sandbox.add_user("demoshop", SITE, addons=["blog.demo.test"], email="owner@shop.demo.test")
        sandbox.add_user("demoblog", "news.demo.test", email="editor@news.demo.test")
        lecp = configure(sandbox, pebble)

        started = time.monotonic()
        proc = lecp.run("ssl", "issue", "--user", "demoshop", *NAMES)
        took = time.monotonic() - started
        if proc.returncode != 0:
            print(f"FAILED: le-cp ssl issue: {proc.stderr.strip()}", file=sys.stderr)
            return 1
        try:
            cert = prove(sandbox.https_port, f"www.{SITE}", pebble.root_pem())
        except (ssl.SSLError, OSError) as exc:
            print(
                f"FAILED: the site does not serve a verifiable certificate: {exc}", file=sys.stderr
            )
            return 1
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        print()
        print("letsencrypt-cpanel demo: the proof held.")
        print(f"  {proc.stdout.strip()}  ({took:.2f} s, as a fresh le-cp process)")
        print(f"  https://{SITE}:{sandbox.https_port}/ now serves a certificate for")
        print(f"    {', '.join(san.get_values_for_type(x509.DNSName))}")
        until = f"{cert.not_valid_after_utc:%Y-%m-%d}"
        print(f"    issued by {cert.issuer.rfc4514_string()}, valid until {until}")
        print("    and its chain verifies against this Pebble's root (TLS handshake with SNI).")
        print()
        install_plugin_pages(sandbox)
        cpanel_login, cpanel_page = page_links(
            sandbox, "demoshop", "cpaneld", plugin_pages.PAGE_PATH
        )
        whm_login, whm_page = page_links(sandbox, "root", "whostmgrd", whm_pages.PAGE_PATH)
        print("  Log in (the browser must accept the sandbox's self-signed service certificate),")
        print("  then open the plugin's page in the same browser:")
        print(f"    cPanel as demoshop: {cpanel_login}")
        print(f"      the plugin's page: {cpanel_page}")
        print(f"    WHM as root:        {whm_login}")
        print(f"      the plugin's page: {whm_page}")
        print(f"  Try: LECP_ROOT={DEMO_ROOT} .venv/bin/le-cp ssl list --user demoshop")
        if once:
            return 0
        print("\nServing until Ctrl-C.")
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if sandbox is not None:
            sandbox.stop()
        pebble.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    raise SystemExit(main())
