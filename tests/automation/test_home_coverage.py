"""Which names a website's certificate should cover, whoever issued it: the cPanel page's (and
`le-cp ssl list`'s) "Some names not covered", with the names."""

from __future__ import annotations

from letsencrypt_cpanel.certificates import names_to_cover, vhost_status
from letsencrypt_cpanel.record_format import STATE_INSTALLED, CertificateEntry
from tests.automation.test_autossl_plan import ADDON, MAIN, NOW, host

PLAIN = ("ex.test", "www.ex.test")


def mine(names: tuple[str, ...]) -> CertificateEntry:
    """The plugin's entry for the certificate `host(names)` installs (cPanel's id "id")."""
    return CertificateEntry("ex.test", list(names), state=STATE_INSTALLED, cert_id="id")


def test_the_names_a_website_should_have_covered() -> None:
    # Its own names, parked ones too; not mail.: the Issue form does not tick it either.
    assert names_to_cover(MAIN) == ("ex.test", "www.ex.test", "parked.test", "www.parked.test")
    # ...unless the plugin's certificate was meant to carry it.
    carried = mine(("ex.test", "mail.ex.test", "cpanel.ex.test"))
    assert names_to_cover(MAIN, carried)[-2:] == ("mail.ex.test", "cpanel.ex.test")
    # Not the subdomain cPanel made to hold an addon domain (shop.ex.test): nobody visits it.
    assert names_to_cover(ADDON) == ("shop.test", "www.shop.test")
    assert "shop.ex.test" in ADDON.names


def test_home_says_which_names_are_not_covered_whoever_issued_it() -> None:
    def status(
        names: tuple[str, ...], entry: CertificateEntry | None
    ) -> tuple[str, tuple[str, ...]]:
        st = vhost_status(MAIN, host(names, days=80), entry, now=NOW, renewal_fraction=1 / 3)
        return st.status, st.uncovered

    parked = ("parked.test", "www.parked.test")
    assert status(PLAIN, mine(PLAIN)) == ("partial", parked)
    assert status(PLAIN, None) == ("partial", parked)  # another provider's
    assert status((*PLAIN, "mail.ex.test"), None) == ("partial", parked)
    everything = (*PLAIN, *parked)
    assert status(everything, mine(everything)) == ("secured", ())
    assert status(("*.ex.test", "ex.test", *parked), None) == ("secured", ())
    # Due for renewal and short of names: the names are what the user can act on.
    st = vhost_status(MAIN, host(PLAIN, days=5), mine(PLAIN), now=NOW, renewal_fraction=1 / 3)
    assert st.status == "partial" and st.label == "Some names not covered"
    # Not installed, or self-signed: every name is uncovered, the status says why.
    st = vhost_status(MAIN, None, None, now=NOW, renewal_fraction=1 / 3)
    assert st.status == "not_secured" and st.uncovered == names_to_cover(MAIN)
