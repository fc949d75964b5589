"""A user's own order within root's rate-limit budget, for real: `le-cp ssl issue` runs the
Issuer as the user, which asks the daemon's socket (served as the daemon launcher serves it)
before it asks Pebble; a used-up budget refuses the order before the CA sees it."""

from __future__ import annotations

from letsencrypt_cpanel.config import load_settings
from letsencrypt_cpanel.root_service import spawn_root_service
from tests.fixtures.lecp import LeCp
from tests.fixtures.sandbox import RunningSandbox


def test_an_order_over_the_budget_is_held_back_before_the_ca(
    lecp: LeCp, sandbox: RunningSandbox, new_user
) -> None:
    user = new_user("budget-held.test")
    lecp.ok("config", "set", "budget_duplicates", "1")
    try:
        with spawn_root_service(load_settings({"LECP_ROOT": str(sandbox.root)})):
            lecp.ok("ssl", "issue", "--user", user, "budget-held.test")
            first = sandbox.fetch_site_cert("budget-held.test")
            # Same names again (a new key type, so a new order): the exact-set budget is spent.
            again = ("ssl", "issue", "--user", user, "--key-type", "ecdsa:p-256")
            held = lecp.run(*again, "budget-held.test")
            assert held.returncode != 0
            assert "holds the order back" in held.stderr and "duplicates" in held.stderr
            assert "Try again after" in held.stderr
            assert sandbox.fetch_site_cert("budget-held.test").serial_number == first.serial_number
        # The daemon stopped: the order goes ahead, the CA's own limits still hold.
        lecp.ok(*again, "budget-held.test")
        assert sandbox.fetch_site_cert("budget-held.test").serial_number != first.serial_number
    finally:
        lecp.ok("config", "set", "budget_duplicates", "5")
