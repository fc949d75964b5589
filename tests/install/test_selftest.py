"""`le-cp self-test` against a sandbox cPanel server and Pebble: all OK once configured and the
daemon runs; then one thing broken at a time, and that line says FAIL with the reason."""

from __future__ import annotations

import email.utils
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cpanel_sandbox import certs
from tests.conftest import free_port
from tests.fixtures.lecp import REPO, LeCp, configure
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import RunningSandbox

NAMES = ["config", "acme directory", "clock", "loopback tls", "whm api", "daemon"]

pytestmark = [pytest.mark.pebble]


def self_test(lecp: LeCp) -> tuple[int, dict[str, dict[str, Any]]]:
    proc = lecp.run("self-test", "--json")
    return proc.returncode, {c["name"]: c for c in json.loads(proc.stdout)}


def failing(lecp: LeCp) -> dict[str, str]:
    code, checks = self_test(lecp)
    assert code == 1
    return {name: c["detail"] for name, c in checks.items() if not c["ok"]}


@pytest.fixture
def lecp(fresh_sandbox: Callable[..., RunningSandbox], pebble: PebbleInstance) -> LeCp:
    return configure(fresh_sandbox(), pebble)


@pytest.fixture
def daemon(lecp: LeCp) -> Iterator[subprocess.Popen[bytes]]:
    """The real daemon in the foreground (as systemd runs it), its pid file under the root."""
    pid_file = lecp.sandbox.root / "var/run/letsencrypt-cpanel.pid"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "daemon/letsencrypt-cpaneld"), "--foreground"],
        env=lecp.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text().strip()) and proc.poll() is None:
        assert time.monotonic() < deadline, "the daemon wrote no pid file"
        time.sleep(0.05)
    yield proc
    proc.terminate()
    proc.wait(timeout=30)


def test_all_ok_then_each_broken_thing_fails_its_line(
    lecp: LeCp, daemon: subprocess.Popen[bytes]
) -> None:
    proc = lecp.run("self-test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["OK"] * len(NAMES)
    assert all(line[5:].startswith(name) for line, name in zip(lines, NAMES, strict=True))

    # A token WHM does not know.
    good = json.loads((lecp.sandbox.root / "etc/letsencrypt-cpanel.secrets").read_text())
    lecp.run("config", "set", "whm_token", input_text="NOTAVALIDTOKEN\n")
    assert list(failing(lecp)) == ["whm api"]
    lecp.run("config", "set", "whm_token", input_text=good["whm_token"] + "\n")

    # The secrets file readable by everyone.
    secrets = lecp.sandbox.root / "etc/letsencrypt-cpanel.secrets"
    secrets.chmod(0o644)
    assert "make it 0600" in failing(lecp)["config"]
    secrets.chmod(0o600)

    # The daemon stopped.
    daemon.terminate()
    daemon.wait(timeout=30)
    assert "not running" in failing(lecp)["daemon"]


def test_another_certificate_on_the_whm_port_fails_loopback_tls(
    lecp: LeCp, daemon: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    crt, key = certs.make_self_signed("impostor.test", ["impostor.test"], ["127.0.0.1"])
    (tmp_path / "c.pem").write_text(crt + key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "c.pem")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with server.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        lecp.ok("config", "set", "whm_port", str(listener.getsockname()[1]))
        failed = failing(lecp)
    finally:
        listener.close()
    assert list(failed) == ["loopback tls", "whm api"]
    assert "not cPanel's service certificate" in failed["loopback tls"]
    assert failed["whm api"].startswith("not tried")  # the token never went to the impostor


class SkewedDirectory(http.server.BaseHTTPRequestHandler):
    """An ACME directory whose server clock is an hour behind ours."""

    def do_GET(self) -> None:
        body = json.dumps({"newNonce": "x", "newAccount": "x", "newOrder": "x"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return email.utils.formatdate(time.time() - 3600, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_skewed_clock_and_an_unreachable_ca_fail(
    lecp: LeCp, daemon: subprocess.Popen[bytes]
) -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SkewedDirectory)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/dir"
        lecp.ok("config", "set", "acme_directory", url)
        failed = failing(lecp)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert list(failed) == ["clock"]
    assert "ahead of the CA's" in failed["clock"]

    lecp.ok("config", "set", "acme_directory", f"https://127.0.0.1:{free_port()}/dir")
    failed = failing(lecp)
    assert list(failed) == ["acme directory", "clock"]
    assert "unreachable" in failed["acme directory"]


def test_an_unreadable_config_fails_and_nothing_else_is_tried(
    lecp: LeCp, daemon: subprocess.Popen[bytes]
) -> None:
    (lecp.sandbox.root / "etc/letsencrypt-cpanel.conf").write_text("{not json")
    proc = lecp.run("self-test")
    assert proc.returncode == 1
    first, *rest = proc.stdout.splitlines()
    assert first.startswith("FAIL config") and "not valid JSON" in first
    assert all(line.startswith("FAIL") and "not tried" in line for line in rest)
    assert len(rest) == len(NAMES) - 1
    assert os.environ.get("LECP_ROOT") != str(lecp.sandbox.root)  # le-cp got it, not us
