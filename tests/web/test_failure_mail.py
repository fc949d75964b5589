"""The failure mail points at what the cPanel page offers (Issue; the page has no Renew button)
and gives the advice that fits how each certificate's names are checked: a wildcard's through
DNS, never only the HTTP advice (issue 4, issue 7)."""

from __future__ import annotations

from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.notify import FAILED, compose, plan_mails
from letsencrypt_cpanel.state import UserReport, VhostReport

NOW = 1_800_000_000


def _failure_mail_body(*outcomes: VhostReport) -> str:
    mails = plan_mails(
        UserReport(False, list(outcomes)), {}, Settings(), mailed_at=lambda v, k: 0, now=NOW
    )
    [(kind, items)] = mails
    assert kind == FAILED
    message = compose(
        kind, to="o@mail.test", sender="d@s.test", user="owner", hostname="s.test", items=items
    )
    body: str = message.get_content()
    return body


def test_the_failure_mail_says_issue_again_and_fits_the_method() -> None:
    wild = VhostReport("wild.test", "failed", ("wild.test", "*.wild.test"), 0, NOW, "", "no TXT")
    plain = VhostReport("plain.test", "failed", ("plain.test",), 0, NOW, "", "got 404")
    body = _failure_mail_body(wild, plain)

    # What the page offers: Issue, not a Renew button it does not have.
    assert "renew the certificate" not in body and "press Issue for the website" in body
    # The wildcard's names are checked through DNS, and the mail says so for that site only.
    wild_part = body.split("- wild.test", 1)[1].split("- plain.test", 1)[0]
    plain_part = body.split("- plain.test", 1)[1].split("What to do", 1)[0]
    assert "names checked through DNS (dns-01)" in wild_part
    assert "names checked" not in plain_part
    # Both advices, each under its method: the HTTP one is no longer given as the only one.
    assert "Checked through DNS (dns-01):" in body and "nameservers" in body
    assert "Checked over HTTP (http-01" in body and ".well-known/acme-challenge/" in body


def test_the_method_a_failed_renewal_reports_is_named_for_its_site() -> None:
    http = VhostReport(
        "http.test", "failed", ("http.test",), 0, NOW, "", "got 404", challenge="http-01"
    )
    dns = VhostReport("dns.test", "failed", ("dns.test",), 0, NOW, "", "no TXT", challenge="dns-01")
    body = _failure_mail_body(http, dns)
    http_part = body.split("- http.test", 1)[1].split("- dns.test", 1)[0]
    dns_part = body.split("- dns.test", 1)[1].split("What to do", 1)[0]
    assert "names checked over HTTP (http-01)" in http_part
    assert "names checked through DNS (dns-01)" in dns_part


def test_the_method_is_known_from_the_certificate_or_the_failure() -> None:
    from letsencrypt_cpanel.errors import ChallengeFailed, Error, SelfCheckFailed
    from letsencrypt_cpanel.record_format import CertificateEntry
    from letsencrypt_cpanel.user_renewal import _method_that_failed

    http_entry = CertificateEntry(vhost="a.test", names=["a.test"], challenge_method="http-01")
    dns_entry = CertificateEntry(vhost="a.test", names=["a.test"], challenge_method="dns-01")
    selfcheck = SelfCheckFailed("a.test", "got 404")
    assert _method_that_failed(http_entry, selfcheck) == "http-01"
    assert _method_that_failed(dns_entry, selfcheck) == "dns-01"
    assert _method_that_failed(http_entry, ChallengeFailed("a.test", "x", kind="dns-zone")) == (
        "dns-01"
    )
    both = SelfCheckFailed("a.test", "got 404; DNS tried too")
    both.__cause__ = ChallengeFailed("a.test", "no TXT", kind="dns-propagation")
    assert _method_that_failed(http_entry, both) == ""
    assert _method_that_failed(http_entry, Error("the CA is down")) == ""
