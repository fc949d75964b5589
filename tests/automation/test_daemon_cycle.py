"""The real daemon (`daemon/letsencrypt-cpaneld`) runs the service certificate and AutoSSL after
the renewals, with one Apache restart, and drains the queue cPanel's hooks fill."""

from __future__ import annotations

import signal
import time

from tests.automation.conftest import Bed
from tests.automation.test_service_cert import presented
from tests.fixtures.lecp import REPO

HOOK = REPO / "plugin/hooks/letsencrypt-cpanel-hook"


def test_once_renews_then_secures_the_services_and_every_site(short_bed: Bed) -> None:
    bed = short_bed
    bed.set("autossl_enabled", "true")
    bed.sandbox.add_user("dave", "dave.test", addons=["shop-dave.test"])
    restarts = bed.commands("restartsrv_httpd")
    out = bed.once()
    assert "service certificate: issued" in out, out
    assert "AutoSSL: 2 secured" in out, out
    assert bed.secured("dave.test") and bed.secured("www.shop-dave.test")
    assert "Pebble" in presented(bed.sandbox.whm_port).issuer.rfc4514_string()
    assert bed.commands("restartsrv_httpd") == restarts + 1
    # The next cycle has nothing to do: no order, no restart.
    out = bed.once()
    assert "AutoSSL: 0 secured" in out and "service certificate: issued" not in out, out
    assert bed.commands("restartsrv_httpd") == restarts + 1


def test_the_running_daemon_secures_a_hooked_account_within_seconds(short_bed: Bed) -> None:
    bed = short_bed
    bed.set("autossl_enabled", "true")
    report = bed.root / "var/lib/letsencrypt-cpanel/autossl-report.json"
    proc = bed.popen("--foreground")
    try:
        deadline = time.monotonic() + 60
        while not report.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert report.exists(), "the first cycle did not run AutoSSL"
        bed.sandbox.add_user("erin", "erin.test")
        assert bed.hook("erin").startswith("1 ")
        deadline = time.monotonic() + 90
        while not bed.secured("erin.test") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert bed.secured("erin.test")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "queued by cPanel hooks: erin" in err, err
