"""The daemon's cycle holds cPanel's no-restart flag for about `apache_restart_batch_seconds` at
a time, never for the whole cycle: the flag is server-wide, so while it is held a user's own
install on the cPanel page is not served either. Workers share a hold; each hold that saw an
install ends with one Apache restart (many installs, one restart), and the flag is down before
the next hold. A user's own install made under the flag gets the hold's restart even when
the batch itself installed nothing."""

from __future__ import annotations

import threading
import time

from letsencrypt_cpanel.apache_restarts import FLAG_PATH, deferred_restarts
from letsencrypt_cpanel.config import load_settings
from tests.automation.conftest import Bed
from tests.fixtures.plugin_pages import new_user
from tests.fixtures.sandbox import RunningSandbox
from tests.sandbox.pki import TestCA


class FlagWatch:
    """Samples the flag file (and the restarts so far) until stopped: the flag's ups and downs."""

    def __init__(self, bed: Bed) -> None:
        self.bed = bed
        self.flag = bed.settings().path(FLAG_PATH)
        # (flag up?, restarts of Apache so far) at each change of the flag.
        self.changes: list[tuple[bool, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last: bool | None = None
        while not self._stop.is_set():
            up = self.flag.exists()
            if up != last:
                self.changes.append((up, self.bed.commands("restartsrv_httpd")))
                last = up
            time.sleep(0.002)

    def __enter__(self) -> FlagWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _three_users_four_certificates_due(bed: Bed) -> None:
    sb = bed.sandbox
    bed.set("hostcert_enabled", "false")
    sb.add_user("rba", "rba.test", addons=["rba-shop.test"])
    sb.add_user("rbb", "rbb.test")
    sb.add_user("rbc", "rbc.test")
    for user, name in (("rba", "rba.test"), ("rba", "rba-shop.test")):
        bed.issue(user, name)
    bed.issue("rbb", "rbb.test")
    bed.issue("rbc", "rbc.test")
    bed.set("renewal_days", "30")  # every 20-day certificate is due
    bed.set("parallel_workers", "2")  # batches: [rba, rbb], then [rbc]
    assert bed.commands("restartsrv_httpd") == 0


def test_installs_within_the_hold_time_share_one_restart(short_bed: Bed) -> None:
    bed = short_bed
    _three_users_four_certificates_due(bed)
    with FlagWatch(bed) as watch:
        out = bed.once()
    assert "4 renewed" in out, out
    # Both batches fit in one hold (apache_restart_batch_seconds, 60 s by default): one restart.
    assert bed.commands("restartsrv_httpd") == 1, out
    assert [up for up, _ in watch.changes if up] == [True], watch.changes
    assert not bed.settings().path(FLAG_PATH).exists()


def test_one_restart_per_hold_that_installed_and_no_flag_between_holds(
    short_bed: Bed,
) -> None:
    bed = short_bed
    _three_users_four_certificates_due(bed)
    bed.set("apache_restart_batch_seconds", "0")  # each hold ends with the next worker done

    with FlagWatch(bed) as watch:
        out = bed.once()
    assert "4 renewed" in out, out

    # Four installs by three workers, two at a time: a hold per worker done (two that finish
    # together share one), each ending with one restart: never one per install (rba's worker
    # installs two certificates), never one per cycle.
    ups = [restarts for up, restarts in watch.changes if up]
    downs = [up for up, _ in watch.changes if not up]
    assert 2 <= len(ups) <= 3, watch.changes  # raised for each hold, lowered in between
    assert bed.commands("restartsrv_httpd") == len(ups), out
    # When a hold raised the flag, Apache had restarted for every hold before it already.
    assert ups == list(range(len(ups))), watch.changes
    assert watch.changes[-1][0] is False and len(downs) >= len(ups)
    assert not bed.settings().path(FLAG_PATH).exists()


def _restarts(sandbox: RunningSandbox) -> int:
    log = sandbox.root / "var/cpanel/sandbox-commands.log"
    return log.read_text().count('"cmd": "restartsrv_httpd"') if log.exists() else 0


def test_a_users_own_install_under_the_flag_gets_a_restart(sandbox: RunningSandbox) -> None:
    settings = load_settings({"LECP_ROOT": str(sandbox.root)})
    user, domain = new_user(sandbox, "rbown")
    leaf = TestCA("Users Own CA").leaf([domain])
    before = _restarts(sandbox)
    time.sleep(0.2)  # clear of the clock slack: nothing changed during the idle batch below
    with deferred_restarts(settings) as idle:
        pass
    assert not idle.restarted and _restarts(sandbox) == before

    with deferred_restarts(settings) as batch:
        # The user installs on the cPanel page while a batch of workers holds the flag: cPanel
        # leaves Apache alone, and the batch itself installs nothing.
        reply = sandbox.uapi(
            sandbox.login(user),
            "SSL",
            "install_ssl",
            {"domain": domain, "cert": leaf.cert, "key": leaf.key, "cabundle": leaf.chain},
        )
        assert reply.json()["status"] == 1, reply.json()
    assert not batch.needs_restart and batch.restarted
    assert _restarts(sandbox) == before + 1


def test_autossl_lets_the_flag_go_between_holds(short_bed: Bed) -> None:
    bed = short_bed
    bed.set("hostcert_enabled", "false")
    bed.set("autossl_enabled", "true")
    for n in (1, 2):
        bed.sandbox.add_user(f"rbas{n}", f"rbas{n}.test")
    bed.set("parallel_workers", "1")
    bed.set("apache_restart_batch_seconds", "0")  # each worker's installs their own hold
    with FlagWatch(bed) as watch:
        out = bed.lecp.ok("autossl", "run", "--user", "rbas1", "--user", "rbas2")
    assert out.count(": secured") >= 2, out
    assert bed.commands("restartsrv_httpd") == 2, out
    assert [up for up, _ in watch.changes if up] == [True, True], watch.changes
    assert not bed.settings().path(FLAG_PATH).exists()
