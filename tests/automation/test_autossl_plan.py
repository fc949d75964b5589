"""AutoSSL's decisions on one vhost: does it need a certificate, and which names to try."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from letsencrypt_cpanel.autossl_plan import candidate_names, excluded_by, needs_certificate
from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.cpanel.models import CertificateFacts, InstalledHost, Vhost
from letsencrypt_cpanel.record_format import STATE_INSTALLED, STATE_REPLACED, CertificateEntry

NOW = 1_800_000_000
DAY = 86400
MAIN = Vhost(
    "ex.test",
    "ex.test",
    "main",
    "/home/ex/public_html",
    ("ex.test", "www.ex.test", "mail.ex.test", "parked.test", "www.parked.test"),
)
ADDON = Vhost(
    "shop.test",
    "shop.ex.test",
    "addon",
    "/home/ex/shop",
    ("shop.test", "www.shop.test", "shop.ex.test", "www.shop.ex.test"),
)
SUB = Vhost(
    "blog.ex.test", "blog.ex.test", "sub", "/home/ex/blog", ("blog.ex.test", "www.blog.ex.test")
)


def host(names: tuple[str, ...], *, days: float, self_signed: bool = False) -> InstalledHost:
    facts = CertificateFacts(
        "id", names, names[0], "CA", "Org", NOW - 60 * DAY, int(NOW + days * DAY), self_signed
    )
    return InstalledHost("ex.test", "/home/ex/public_html", names, names, facts, "PEM")


def test_which_vhosts_need_a_certificate(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    good = ("ex.test", "www.ex.test")
    assert needs_certificate(MAIN, None, None, s, NOW) == "no certificate"
    assert needs_certificate(MAIN, host(good, days=80, self_signed=True), None, s, NOW) == (
        "self-signed certificate"
    )
    assert needs_certificate(MAIN, host(good, days=-1), None, s, NOW) == "expired certificate"
    assert "does not cover" in needs_certificate(MAIN, host(("other.test",), days=80), None, s, NOW)
    # Another provider's valid certificate is its business until its last days.
    assert needs_certificate(MAIN, host(good, days=20), None, s, NOW) == ""
    assert "another provider" in needs_certificate(MAIN, host(good, days=1), None, s, NOW)
    # The plugin's own certificate is renewal's, even when it is due or gone...
    mine = CertificateEntry("ex.test", list(good), state=STATE_INSTALLED)
    assert needs_certificate(MAIN, None, mine, s, NOW) == ""
    # ...unless someone replaced it with one that is no good now.
    gone = dataclasses.replace(mine, state=STATE_REPLACED)
    assert needs_certificate(MAIN, None, gone, s, NOW) == "no certificate"
    assert needs_certificate(MAIN, host(good, days=20), gone, s, NOW) == ""


def test_candidate_names_with_and_without_proxy_subdomains(tmp_path: Path) -> None:
    s = Settings(root=tmp_path)
    main = candidate_names(MAIN, s)
    assert main[: len(MAIN.names)] == list(MAIN.names)
    assert {"cpanel.ex.test", "webmail.parked.test", "cpcontacts.ex.test"} <= set(main)
    assert "cpanel.mail.ex.test" not in main and "cpanel.www.ex.test" not in main
    addon = candidate_names(ADDON, s)
    assert "webdisk.shop.test" in addon and "cpanel.shop.ex.test" not in addon
    assert candidate_names(SUB, s) == list(SUB.names)  # cPanel makes none for subdomains
    off = dataclasses.replace(s, autossl_proxy_subdomains=False)
    assert candidate_names(MAIN, off) == list(MAIN.names)


def test_exclusion_patterns() -> None:
    patterns = ("*.staging.test", "dev.*")
    assert excluded_by("a.staging.test", patterns) == "*.staging.test"
    assert excluded_by("dev.ex.test", patterns) == "dev.*"
    assert excluded_by("staging.test", patterns) == ""
