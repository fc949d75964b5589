"""What `le-cp ssl issue` refuses, and proof that the CA was never asked."""

from __future__ import annotations

import pytest

from tests.fixtures.lecp import LeCp
from tests.fixtures.pebble import PebbleInstance
from tests.fixtures.sandbox import RunningSandbox


def pebble_posts(pebble: PebbleInstance, path: str) -> int:
    return (pebble.workdir / "pebble.log").read_text().count(f"POST {path}")


@pytest.fixture(scope="module")
def two_users(lecp: LeCp, sandbox: RunningSandbox) -> tuple[str, str]:
    sandbox.add_user("refuser1", "mine.test", addons=["mine-too.test"])
    sandbox.add_user("refuser2", "theirs.test")
    return "refuser1", "theirs.test"


@pytest.mark.parametrize(
    ("names", "says"),
    [
        (["theirs.test"], "'theirs.test': is not a domain of this cPanel account"),
        (["unknown-to-cpanel.test"], "is not a domain of this cPanel account"),
        (["mine.test/x"], "contains '/' or '..'"),
        (["../mine.test"], "contains '/' or '..'"),
        (["mine .test"], "contains spaces or control characters"),
        (["mine\x07.test"], "contains spaces or control characters"),
        (["mine.test\n"], "contains spaces or control characters"),
        ([f"n{i}.mine.test" for i in range(101)], "101 names were given"),
        (["mine.test", "theirs.test"], "'theirs.test': is not a domain"),
        # Both the user's, but of two websites: one certificate per website.
        (
            ["mine.test", "www.mine-too.test"],
            "'www.mine-too.test': belongs to the website mine-too.test, not mine.test",
        ),
    ],
)
def test_refused_before_the_ca_is_asked(
    lecp: LeCp, pebble: PebbleInstance, two_users: tuple[str, str], names: list[str], says: str
) -> None:
    user, _ = two_users
    orders = pebble_posts(pebble, "/order-plz")
    proc = lecp.run("ssl", "issue", "--user", user, *names)
    assert proc.returncode == 1
    assert says in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert pebble_posts(pebble, "/order-plz") == orders


def test_redirecting_docroot_fails_the_self_check_not_the_ca(
    lecp: LeCp, sandbox: RunningSandbox, pebble: PebbleInstance
) -> None:
    sandbox.add_user("redirector", "moved.test")
    docroot = sandbox.root / "home/redirector/public_html"
    htaccess = docroot / ".htaccess"
    htaccess.write_text("Redirect 301 / http://elsewhere.test/\n")
    challenges = pebble_posts(pebble, "/chalZ/")
    proc = lecp.run("ssl", "issue", "--user", "redirector", "moved.test")
    assert proc.returncode == 1
    assert "moved.test" in proc.stderr and "elsewhere.test" in proc.stderr
    # Nothing was answered: Pebble never validated, so no failed validation was counted.
    assert pebble_posts(pebble, "/chalZ/") == challenges
    # The token file is gone again.
    assert not list((docroot / ".well-known/acme-challenge").glob("*"))


def test_unknown_user_and_key_type(lecp: LeCp) -> None:
    proc = lecp.run("ssl", "issue", "--user", "nobody-here", "x.test")
    assert proc.returncode == 1 and "nobody-here" in proc.stderr
    proc = lecp.run("ssl", "issue", "--user", "refuser1", "--key-type", "dsa:1024", "mine.test")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
