"""With `cpanel_autossl_exclude_managed` on, each cycle keeps cPanel's own AutoSSL off the names
the plugin secures, so the two never replace each other's certificates."""

from __future__ import annotations

from cpanel_sandbox import whm_autossl
from tests.daemon.conftest import Bed


def test_a_cycle_excludes_the_plugins_names_from_cpanels_autossl(bed: Bed) -> None:
    sb = bed.sandbox
    sb.add_user("coexist", "coexist.test", addons=["other.test"], email="c@mail.test")
    bed.issue("coexist", "coexist.test", "www.coexist.test")
    bed.set("renewal_days", "30")  # Pebble's 20-day certificates are due: the user is visited

    bed.once()
    assert whm_autossl.excluded_domains(sb.root, "coexist") == []  # off by default

    bed.set("cpanel_autossl_exclude_managed", "true")
    bed.once()
    assert whm_autossl.excluded_domains(sb.root, "coexist") == ["coexist.test", "www.coexist.test"]
