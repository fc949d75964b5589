"""Benchmark 5: the cycle when everything is due.

20 users with 100 plugin certificates, all inside their renewal window (populate --certs --due),
the daemon's state as earlier cycles left it: one `daemon/letsencrypt-cpaneld --once` cycle
renews all 100 through Pebble (http-01 into the sandbox's docroots) and installs them; its wall
time, against `certbot renew --force-renewal` over 100 certbot lineages for the same names, made
beforehand with `certonly --webroot -w <the vhost's docroot>` (not timed). Target: ≥ 15× faster.

    .venv/bin/python bench/bench_cycle_due.py [USERS CERTS]
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cycle_idle import prime_state
from testbed import DAEMON, Bed, Certbot, Figure, Series, peak_rss_run, save, testbed, timed

from cpanel_sandbox import populate
from tests.fixtures.pebble import PebbleInstance

SETUP_LANES = 4  # certbot lineages are made 4 at a time (each lane its own config dir)


def vhosts_of(bed: Bed, users: list[str]) -> list[tuple[str, str, Path]]:
    """(user, vhost domain, docroot) of every plugin certificate, in account order."""
    from cpanel_sandbox import accounts

    out: list[tuple[str, str, Path]] = []
    for user in users:
        main = accounts.main_data(bed.root, user)
        for domain in [main["main_domain"], *accounts.addon_map(main)]:
            out.append((user, domain, bed.docroot(user, domain)))
    return out


def make_lineages(bed: Bed, sites: list[tuple[str, str, Path]]) -> Certbot:
    """certonly --webroot for every site (names as the plugin's: NAME and www.NAME), in lanes
    with their own config dirs, then merged into one config dir, as if made one by one."""
    lanes = [bed.certbot(f"lane{i}") for i in range(SETUP_LANES)]
    # One ACME account for all lanes (with several, `renew` asks which one to use).
    _, domain, docroot = sites[0]
    lanes[0].certonly(docroot, domain, f"www.{domain}")
    for lane in lanes[1:]:
        shutil.copytree(lanes[0].base / "config" / "accounts", lane.base / "config" / "accounts")

    def run_lane(i: int) -> None:
        for _, domain, docroot in sites[i::SETUP_LANES]:
            if domain != sites[0][1]:
                lanes[i].certonly(docroot, domain, f"www.{domain}")

    with ThreadPoolExecutor(SETUP_LANES) as pool:
        list(pool.map(run_lane, range(SETUP_LANES)))
    merged = bed.certbot("merged")
    for lane in (lane for lane in lanes if (lane.base / "config").is_dir()):
        shutil.copytree(
            lane.base / "config", merged.base / "config", dirs_exist_ok=True, symlinks=True
        )
        for conf in (merged.base / "config" / "renewal").glob("*.conf"):
            text = conf.read_text(encoding="utf-8")
            conf.write_text(text.replace(str(lane.base), str(merged.base)), encoding="utf-8")
    return merged


def main() -> int:
    users_n, certs_n = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (20, 100)
    made: list[populate.PopulateResult] = []

    def prepare(root: Path, pebble: PebbleInstance) -> None:
        made.append(
            populate.populate(
                root,
                users_n,
                certs_n,
                with_certs=True,
                due=certs_n,
                prefix="due",
                directory=pebble.directory_url,
            )
        )

    with testbed(prepare) as bed:
        users = made[0].users
        prime_state(bed, users)
        sites = vhosts_of(bed, users)
        setup_started = time.perf_counter()
        certbot = make_lineages(bed, sites)
        setup = time.perf_counter() - setup_started
        took, peak, log, _ = peak_rss_run([*DAEMON, "--once"], env=bed.env())
        renewed = re.search(r"renewal cycle done in [\d.]+ s: (.*)", log)
        served = bed.sandbox.fetch_site_cert(sites[-1][1]).issuer.rfc4514_string()
        # No random sleep: without a terminal, certbot renew first waits up to 8 minutes.
        renew = certbot.argv("renew", "--force-renewal", "--no-random-sleep-on-renew")
        theirs = timed(renew, env=certbot.env())
    fig = Figure(
        bench="5",
        what=f"cycle with {certs_n} certificates due across {users_n} users (one run each)",
        ours=Series("daemon --once", [took]),
        reference=Series("certbot renew --force-renewal", [theirs]),
        target="≥ 15×",
        met=None,
        notes=[
            f"daemon: {renewed.group(1) if renewed else 'no summary line'}; peak memory "
            f"{peak:.0f} MB; the last site now serves a certificate from {served}",
            f"certbot lineages made beforehand in {setup:.0f} s ({SETUP_LANES} lanes, merged)",
        ],
    )
    fig.met = (fig.speedup or 0) >= 15
    save([fig], "bench_cycle_due")
    return 0


if __name__ == "__main__":
    sys.exit(main())
