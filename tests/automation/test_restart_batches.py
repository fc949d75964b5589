"""The daemon's cycle holds cPanel's no-restart flag per batch of workers, not for the whole
cycle: the flag is server-wide, so while it is held a user's own install on the cPanel page is
not served either. Each batch that installed something ends with one Apache restart (many
installs, one restart), and the flag is down before the next batch starts."""

from __future__ import annotations

import threading
import time

from letsencrypt_cpanel.apache_restarts import FLAG_PATH
from tests.automation.conftest import Bed


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


def test_one_restart_per_batch_that_installed_and_no_flag_between_batches(
    short_bed: Bed,
) -> None:
    bed, sb = short_bed, short_bed.sandbox
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

    with FlagWatch(bed) as watch:
        out = bed.once()
    assert "4 renewed" in out, out

    # Four installs, two batches, two restarts: not one per install, not one per cycle.
    assert bed.commands("restartsrv_httpd") == 2, out
    ups = [restarts for up, restarts in watch.changes if up]
    downs = [up for up, _ in watch.changes if not up]
    assert len(ups) == 2, watch.changes  # raised for each batch, lowered in between
    # When the second batch raised the flag, Apache had restarted for the first batch already.
    assert ups == [0, 1], watch.changes
    assert watch.changes[-1][0] is False and len(downs) >= 2
    assert not bed.settings().path(FLAG_PATH).exists()
