"""serve(): what it publishes, how it stops, and the service certificate reloaded at once."""

from __future__ import annotations

import signal
import socket
import ssl
from collections.abc import Callable

from cryptography import x509

from cpanel_sandbox import accounts, faults
from letsencrypt_cpanel.config import load_settings
from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.pki import TestCA


def _presented(port: int, name: str | None = None) -> x509.Certificate:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_ports_are_published(sandbox: RunningSandbox) -> None:
    state = faults.read_state(sandbox.root)
    assert state["pid"] == sandbox.process.pid
    assert {k: state[k] for k in ("http_port", "https_port", "cpanel_port", "whm_port")} == {
        "http_port": sandbox.http_port,
        "https_port": sandbox.https_port,
        "cpanel_port": sandbox.cpanel_port,
        "whm_port": sandbox.whm_port,
    }
    assert "challtestsrv" in state and isinstance(state["faults"], dict)
    settings = load_settings({"LECP_ROOT": str(sandbox.root)})
    assert (settings.cpanel_port, settings.whm_port, settings.http_port) == (
        sandbox.cpanel_port,
        sandbox.whm_port,
        sandbox.http_port,
    )


def test_sigint_and_sigterm_stop_cleanly(fresh_sandbox: Callable[..., RunningSandbox]) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        running = fresh_sandbox()
        running.process.send_signal(signum)
        assert running.process.wait(timeout=15) == 0
        assert not (running.root / "var/cpanel/liveapi").exists()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", running.cpanel_port)) != 0


def test_faults_already_set_are_kept_at_start(
    fresh_sandbox: Callable[..., RunningSandbox],
) -> None:
    first = fresh_sandbox()
    first.set_fault("whm:gethostname", "status0", times=None)
    first.stop()
    again = fresh_sandbox(root=first.root)
    assert again.whm_api("gethostname").json()["metadata"]["result"] == 0


def test_new_service_certificate_is_served_at_once(
    fresh_sandbox: Callable[..., RunningSandbox],
) -> None:
    running = fresh_sandbox()
    host = accounts.hostname(running.root)
    leaf = TestCA().leaf([host])
    new = x509.load_pem_x509_certificate(leaf.cert.encode())
    assert _presented(running.cpanel_port) != new
    reply = running.whm_api(
        "install_service_ssl_certificate",
        {"service": "cpanel", "crt": leaf.cert, "key": leaf.key, "cabundle": leaf.chain},
    )
    assert reply.json()["metadata"]["result"] == 1, reply.json()["metadata"]
    assert _presented(running.cpanel_port) == new
    assert _presented(running.whm_port) == new
    assert _presented(running.https_port, "nothing-installed.test") == new
    assert running.whm_api("gethostname").status == 200  # the fixture re-pins to the new cert
