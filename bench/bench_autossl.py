"""Benchmark 2: a whole server.

AutoSSL over 50 sandbox users with 200 vhosts, all new (populate, no certificates): one
`le-cp autossl run`, its wall time and certificates per second, against certbot issuing the same
certificates (the same names per vhost, `certonly --webroot -w <docroot>`) one after another.
certbot's ~2.4 s a certificate is fixed sleeps, so by default it runs for the first 20 vhosts
and its total for all of them is projected from those (BENCH_CERTBOT_ALL=1 runs every one).
Target: all 200 in 30 s or less, at least 15× faster.

    .venv/bin/python bench/bench_autossl.py [USERS VHOSTS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import Figure, Series, save, testbed

from cpanel_sandbox import populate
from tests.fixtures.pebble import PebbleInstance

CERTBOT_SAMPLE = 20


def main() -> int:
    users_n, vhosts_n = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (50, 200)
    made: list[populate.PopulateResult] = []

    def prepare(root: Path, pebble: PebbleInstance) -> None:
        made.append(populate.populate(root, users_n, vhosts_n, prefix="auto"))

    with testbed(prepare) as bed:
        # The budgets mirror Let's Encrypt's limits; Pebble has none. With the default 10 new
        # accounts per IP per 3 hours, 40 of 200 vhosts (10 accounts' worth) were secured and
        # the rest deferred to later runs, as they would be on Let's Encrypt.
        bed.lecp.ok("config", "set", "budget_new_accounts", "10000")
        started = time.perf_counter()
        proc = bed.lecp.run("autossl", "run", "--json")
        took = time.perf_counter() - started
        if proc.returncode != 0 and not proc.stdout.strip().startswith("{"):
            raise RuntimeError(f"le-cp autossl run failed: {proc.stderr[-2000:]}")
        data = json.loads(proc.stdout)
        vhosts = [v for v in data["vhosts"] if v.get("status") == "secured"]
        statuses: dict[str, int] = {}
        for v in data["vhosts"]:
            why = f" ({v.get('error')})" if v.get("status") == "deferred" else ""
            key = f"{v.get('status')}{why}"
            statuses[key] = statuses.get(key, 0) + 1
        names_per = [len(v.get("names") or []) for v in vhosts] or [0]
        # certbot: the same names, the same docroots, one after another.
        everyone = os.environ.get("BENCH_CERTBOT_ALL") == "1"
        sample = vhosts if everyone else vhosts[:CERTBOT_SAMPLE]
        certbot = bed.certbot()
        theirs = []
        for v in sample:
            docroot = bed.docroot(str(v["user"]), str(v["vhost"]))
            theirs.append(certbot.certonly(docroot, *[str(n) for n in v["names"]]))
    per_cert = statistics.mean(theirs) if theirs else 0.0
    projected = per_cert * vhosts_n  # certbot would issue every one of them
    fig = Figure(
        bench="2",
        what=f"AutoSSL over {users_n} users / {vhosts_n} new vhosts (one run)",
        ours=Series("le-cp autossl run", [took]),
        reference=Series(
            "certbot one after another" + ("" if everyone else f" (projected from {len(theirs)})"),
            [projected],
        ),
        target="≤ 30 s and ≥ 15×",
        met=None,
        notes=[
            f"AutoSSL: {statuses} ({len(vhosts) / took:.1f} certificates/s; names per "
            f"certificate: median {statistics.median(names_per):.0f})",
            f"certbot: {Series('', theirs).summary()} a certificate over {len(theirs)} vhosts",
        ],
    )
    fig.met = took <= 30 and (fig.speedup or 0) >= 15 and len(vhosts) == vhosts_n
    save([fig], "bench_autossl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
