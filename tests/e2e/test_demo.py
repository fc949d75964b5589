"""`make demo`: it must prove a real certificate, or fail saying why; and the URLs it prints must
lead a browser to the plugin's pages."""

from __future__ import annotations

import http.client
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
DEMO_ROOT = Path("/var/tmp/letsencrypt-cpanel-demo")


def test_demo_once_proves_a_certificate() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools/demo.py")],
        env={**os.environ, "DEMO_ONCE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "the proof held" in proc.stdout
    assert "shop.demo.test, www.shop.demo.test" in proc.stdout
    assert "/login/?session=" in proc.stdout


def _service_context() -> ssl.SSLContext:
    """Trusts the demo sandbox's self-signed service certificate alone (cpanel.pem holds the
    certificate and the key; only the certificate is loaded)."""
    text = (DEMO_ROOT / "var/cpanel/ssl/cpanel/cpanel.pem").read_text(encoding="utf-8")
    begin = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    ctx = ssl.create_default_context(cadata=text[begin:end])
    ctx.check_hostname = False
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def _get(url: str, cookie: str = "") -> tuple[int, dict[str, str], str]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    conn = http.client.HTTPSConnection(
        parts.hostname, parts.port, context=_service_context(), timeout=120
    )
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        resp = conn.getresponse()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, headers, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _browse(login_url: str, page_url: str) -> tuple[str, str]:
    """As a browser: follow the login URL (cookie, redirect to the home), then open the page.
    Returns (the home's HTML, the page's HTML)."""
    status, headers, _ = _get(login_url)
    assert status == 302, f"login answered {status}"
    cookie = headers["set-cookie"].split(";", 1)[0]
    base = f"{urlsplit(login_url).scheme}://{urlsplit(login_url).netloc}"
    status, _, home = _get(base + headers["location"], cookie)
    assert status == 200, home[:300]
    status, _, page = _get(page_url, cookie)
    assert status == 200, page[:500]
    return home, page


def _read_until_serving(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Serving until Ctrl-C"):
            return "".join(lines)
    raise AssertionError("the demo never started serving:\n" + "".join(lines))


def test_demo_urls_lead_to_the_plugin_pages(tmp_path: Path) -> None:
    errors = tmp_path / "demo.stderr"
    with errors.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "tools/demo.py")],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    try:
        try:
            out = _read_until_serving(proc, time.monotonic() + 240)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nstderr: {errors.read_text()[-2000:]}") from None
        pages = re.findall(r"the plugin's page: (\S+)", out)
        logins = re.findall(r"(?:cPanel as demoshop|WHM as root): +(\S+)", out)
        assert len(pages) == 2 and len(logins) == 2, out

        home, page = _browse(logins[0], pages[0])
        # The cPanel home lists the plugin, and its page is the plugin's Home for this user.
        assert "letsencrypt-cpanel/letsencrypt.live.cgi" in home
        assert 'id="websites"' in page
        assert 'data-vhost="shop.demo.test"' in page

        home, page = _browse(logins[1], pages[1])
        assert "letsencrypt-cpanel/letsencrypt.live.cgi" in home
        assert "shop.demo.test" in page
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
