"""Benchmark 4: the cPanel page as cpsrvd runs it.

Home (the list of the user's websites and their certificates) for a user with 50 vhosts, each
with a plugin certificate (populate --certs), as an HTTPS GET with the session cookie through the
sandbox's page host, which starts the CGI as a new process as the user each time, as cpsrvd does.
The floors: a CGI that only prints a header, through the same page host (what any Python CGI
costs there), and `python3 -c pass` started directly. Target: median 120 ms or less.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import Bed, Figure, Series, save, testbed

from cpanel_sandbox import populate

RUNS = 20
VHOSTS = 50
FLOOR_CGI = "letsencrypt-cpanel/floor.live.cgi"


def timed_get(bed: Bed, client: object, path: str | None = None) -> float:
    from tests.fixtures.plugin_pages import PageClient

    assert isinstance(client, PageClient)
    started = time.perf_counter()
    if path is None:
        reply = client.get()
    else:
        headers = {"Cookie": client.session.cookie}
        reply = bed.sandbox.request(client.session.port, "GET", path, headers=headers)
    took = time.perf_counter() - started
    if reply.status != 200:
        raise RuntimeError(f"the page answered {reply.status}: {reply.body[:300]!r}")
    return took


def main() -> int:
    from tests.fixtures.plugin_pages import (
        PAGE_PATH,
        PageClient,
        enable_plugin_feature,
        install_cpanel_page,
    )

    def prepare(root: Path, pebble: object) -> None:
        populate.populate(root, 1, VHOSTS, with_certs=True, prefix="page")

    with testbed(prepare) as bed:
        install_cpanel_page(bed.sandbox)
        enable_plugin_feature(bed.sandbox)
        floor_text = f"#!{sys.executable}\nprint('Content-Type: text/plain\\n\\nok')\n"
        bed.sandbox.install_cgi("cpanel", FLOOR_CGI, floor_text)
        client = PageClient.login(bed.sandbox, "page0001")
        html = client.html()
        rows = html.count("page0001.test") + sum(html.count(f"a{i}-page0001.test") for i in (1, 49))
        timed_get(bed, client)  # the first run writes nothing, but warms the OS caches
        page = [timed_get(bed, client) for _ in range(RUNS)]
        floor_path = client.session.token + PAGE_PATH.replace(
            "letsencrypt-cpanel/letsencrypt.live.cgi", FLOOR_CGI
        )
        floor = [timed_get(bed, client, floor_path) for _ in range(RUNS)]
    bare = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(["/usr/bin/python3", "-c", "pass"], check=True)
        bare.append(time.perf_counter() - started)
    fig = Figure(
        bench="4",
        what=f"cPanel page Home, {VHOSTS} vhosts, new CGI process ×{RUNS} via the page host",
        ours=Series("Home", page),
        reference=Series("empty Python CGI via page host", floor),
        target="median ≤ 120 ms",
        met=None,
        floor=True,
        notes=[
            f"`python3 -c pass` alone: {Series('', bare).summary()}",
            f"the page listed the vhosts (sample names found {rows} times)",
        ],
    )
    fig.met = fig.ours.median <= 0.120
    save([fig], "bench_page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
