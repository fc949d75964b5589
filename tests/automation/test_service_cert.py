"""The service (hostname) certificate against Pebble and the sandbox's cPanel services."""

from __future__ import annotations

import json
import socket
import ssl
import time

from cryptography import x509

from cpanel_sandbox import standins
from letsencrypt_cpanel import service_certs
from letsencrypt_cpanel.budgets import NEW_ORDERS, Budgets
from letsencrypt_cpanel.service_cert_state import load_state
from tests.automation.conftest import Bed

HOSTNAME = "server.sandbox.test"
EXTRA = "mail.server.sandbox.test"


def presented(port: int) -> x509.Certificate:
    """The certificate a cpsrvd port presents."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def san(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName))


def services(bed: Bed) -> dict[str, dict[str, object]]:
    reply = bed.sandbox.whm_api("fetch_service_ssl_components")
    return {s["service"]: s for s in reply.json()["data"]["services"]}


def test_issued_installed_on_every_service_and_the_pin_follows(short_bed: Bed) -> None:
    bed = short_bed
    bed.lecp.ok("hostcert", "add", EXTRA)
    before = bed.lecp.ok("hostcert", "status", "--json")
    assert {s["problem"] for s in json.loads(before)["services"]} == {"self-signed"}

    # Root's WHM client pinned to the old, self-signed cpanel.pem, as a daemon cycle holds it.
    root = bed.root_side()
    old_pin = root.tls.cert_pem
    outcome = service_certs.run_once(bed.settings(), root.whm, time.time())
    assert outcome.action == service_certs.ISSUED, outcome.error
    assert sorted(outcome.installed_on) == ["cpanel", "dovecot", "exim", "ftp"]
    assert outcome.pin_followed and outcome.mailed

    for name, svc in services(bed).items():
        info = svc["certificate_info"]
        assert isinstance(info, dict) and not int(str(info["is_self_signed"])), name
        assert set(info["domains"]) == {HOSTNAME, EXTRA}, name  # type: ignore[arg-type]
    # cpsrvd's ports now present it, and root's old client still talks to WHM (re-pinned).
    for port in (bed.sandbox.whm_port, bed.sandbox.cpanel_port):
        cert = presented(port)
        assert san(cert) == {HOSTNAME, EXTRA}
        assert "Pebble" in cert.issuer.rfc4514_string()
    assert root.whm.gethostname() == HOSTNAME
    assert root.whm.listaccts() == []
    fresh = bed.root_side()
    assert fresh.tls.cert_pem != old_pin and fresh.whm.gethostname() == HOSTNAME
    # Users' workers get the new pin too: a worker logs in over it (le-cp ssl list as a user).
    bed.sandbox.add_user("pinned", "pinned.test")
    assert "pinned.test" in bed.lecp.ok("ssl", "list", "--user", "pinned")

    text = bed.lecp.ok("hostcert", "status")
    assert f"extra names: {EXTRA}" in text and "exim" in text and "last attempt" in text
    status = json.loads(bed.lecp.ok("hostcert", "status", "--json"))
    assert {s["problem"] for s in status["services"]} == {""}
    assert status["last_result"] == "issued"
    mails = bed.mailbox.to("admin@mail.test")
    assert len(mails) == 1 and "renewed" in mails[0]["Subject"]
    assert "ftp" in mails[0].get_content()
    # The token files are gone from the hostname's docroot.
    challenge = bed.root / "usr/local/apache/htdocs/.well-known/acme-challenge"
    assert not challenge.exists() or not any(challenge.iterdir())
    # Root's ACME account is root's: in the state dir, 0600, not in any user's record.
    path = bed.root / "var/lib/letsencrypt-cpanel/service-cert.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert bed.settings().acme_directory in load_state(bed.settings()).accounts


def test_renewed_when_due_and_left_alone_when_not(short_bed: Bed) -> None:
    bed = short_bed
    bed.lecp.ok("hostcert", "issue")
    first = presented(bed.sandbox.whm_port)
    settings = bed.settings()
    root = bed.root_side()
    # A fresh 20-day certificate is not due under the 1/3 rule: nothing is ordered.
    again = service_certs.run_once(settings, root.whm, time.time())
    assert again.action == service_certs.NOT_DUE
    # Fifteen days later less than a third is left: renewed with the same key, installed everywhere.
    later = service_certs.run_once(settings, root.whm, time.time() + 15 * 86400)
    assert later.action == service_certs.ISSUED, later.error
    second = presented(bed.sandbox.whm_port)
    assert second.serial_number != first.serial_number
    assert second.public_key().public_numbers() == first.public_key().public_numbers()  # type: ignore[union-attr]
    assert {s["certificate"] for s in services(bed).values()} == {
        services(bed)["cpanel"]["certificate"]
    }


def test_a_service_that_lost_it_gets_the_saved_one_back(short_bed: Bed) -> None:
    bed = short_bed
    bed.lecp.ok("hostcert", "issue")
    issued = presented(bed.sandbox.whm_port)
    # Exim is back on a self-signed certificate (as WHM's "reset" leaves it).
    (bed.root / "var/cpanel/ssl/exim/exim.crt").unlink()
    standins.ensure_service_certs(bed.root, HOSTNAME)
    outcome = service_certs.run_once(bed.settings(), bed.root_side().whm, time.time())
    assert outcome.action == service_certs.REINSTALLED, outcome.error
    assert outcome.installed_on == ["exim"]
    exim_pem = services(bed)["exim"]["certificate"]
    assert x509.load_pem_x509_certificate(str(exim_pem).encode()).serial_number == (
        issued.serial_number
    )


def test_a_failure_is_mailed_and_recorded(short_bed: Bed) -> None:
    bed = short_bed
    bed.pebble.add_a(HOSTNAME, ["10.0.0.1"])  # the hostname points elsewhere
    proc = bed.lecp.run("hostcert", "issue")
    assert proc.returncode == 1
    assert "10.0.0.1" in proc.stderr
    state = load_state(bed.settings())
    assert state.last_result == "failed" and state.failures == 1
    with Budgets.open(bed.settings()) as budgets:  # the pre-check stopped it: nothing ordered
        assert budgets.used(NEW_ORDERS, service_certs.ROOT_ACCOUNT, time.time()) == 0
    mails = bed.mailbox.to("admin@mail.test")
    assert len(mails) == 1 and "failed" in mails[0]["Subject"]
    assert {s["certificate_info"]["is_self_signed"] for s in services(bed).values()} != {0}


def test_a_failed_install_is_retried_from_the_saved_certificate(short_bed: Bed) -> None:
    bed = short_bed
    bed.sandbox.set_fault("whm:install_service_ssl_certificate", "status0", times=1)
    settings = bed.settings()
    first = service_certs.run_once(settings, bed.root_side().whm, time.time())
    assert first.action == service_certs.FAILED and "Not installed on cpanel" in first.error
    assert sorted(first.installed_on) == ["dovecot", "exim", "ftp"]
    saved = load_state(settings).current
    assert saved is not None
    with Budgets.open(settings) as budgets:
        orders = budgets.used(NEW_ORDERS, service_certs.ROOT_ACCOUNT, time.time())
    # The next run installs the saved certificate on cpanel; nothing is ordered again.
    second = service_certs.run_once(settings, bed.root_side().whm, time.time())
    assert second.action == service_certs.REINSTALLED, second.error
    assert second.installed_on == ["cpanel"] and second.pin_followed
    assert (
        presented(bed.sandbox.whm_port).serial_number
        == x509.load_pem_x509_certificate(saved.cert_pem.encode()).serial_number
    )
    with Budgets.open(settings) as budgets:
        assert budgets.used(NEW_ORDERS, service_certs.ROOT_ACCOUNT, time.time()) == orders == 1
