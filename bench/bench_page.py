"""Benchmark 4: the cPanel page as cpsrvd runs it.

Home (the list of the user's websites and their certificates) for a user with 50 vhosts, each
with a plugin certificate (populate --certs), as an HTTPS GET with the session cookie through the
sandbox's page host, which starts the CGI as a new process as the user each time, as cpsrvd does.
The floors: a CGI that only prints a header, through the same page host (what any Python CGI
costs there), and `python3 -c pass` started directly. Target: median 120 ms or less.

The package is byte-compiled first, as install.sh does (`compileall`): the CGI runs as the user,
who cannot write `__pycache__` in the repository, so a module without a current `.pyc` would be
compiled again in every run (10-20 ms of the page, measured) and the figure would be the
checkout's, not an install's. For the same reason the CGIs run on an interpreter laid out as
install.sh lays one out (`install_like_python`): a venv that finds the dependencies and the code
through .pth files. The development venv's Python also imports the editable install's path
finder at every start (~10 ms of CPU that no server pays); Home through it is timed too, in the
same turns, and given in a note. Home and the floor are timed in turns (A/B in one run, so a busy
machine slows both alike), and the CPU time of the CGI processes (user + sys, from the page
host's waited-for children in /proc) is given beside the wall time: on a shared 2-core machine
it moves far less than the wall.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import REPO, Bed, Figure, Series, compile_package, install_like_python, save, testbed

from cpanel_sandbox import populate

RUNS = 20
VHOSTS = 50
FLOOR_CGI = "letsencrypt-cpanel/floor.live.cgi"
DEV_CGI = "letsencrypt-cpanel/dev-venv.live.cgi"


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


def children_cpu(pid: int) -> float:
    """CPU seconds (user + sys) of the waited-for children of process `pid` so far: for the
    page host, the CGIs it ran (proc(5): cutime and cstime, fields 16 and 17, in clock ticks)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def timed_cpu(bed: Bed, client: object, path: str | None, cpu: list[float]) -> float:
    """`timed_get`, adding the CGI's CPU time to `cpu` (10 ms ticks: only their sum is exact)."""
    pid = bed.sandbox.process.pid
    before = children_cpu(pid)
    took = timed_get(bed, client, path)
    cpu.append(children_cpu(pid) - before)
    return took


def installed_launcher(python: Path) -> str:
    """cgi/letsencrypt.live.cgi as install.sh's `launcher` writes it: the venv's Python in the
    first line, the rest as it is."""
    lines = (REPO / "cgi" / "letsencrypt.live.cgi").read_text(encoding="utf-8").splitlines()
    return f"#!{python}\n" + "\n".join(lines[1:]) + "\n"


def cpu_text(cpu: list[float]) -> str:
    return f"CPU (user+sys) {sum(cpu) / len(cpu) * 1000:.0f} ms a run (mean of {len(cpu)})"


def main() -> int:
    from tests.fixtures.plugin_pages import (
        CPANEL_PAGE,
        PAGE_PATH,
        PageClient,
        enable_plugin_feature,
        launcher_text,
    )

    def prepare(root: Path, pebble: object) -> None:
        populate.populate(root, 1, VHOSTS, with_certs=True, prefix="page")

    # As install.sh does; quiet, and a failure (a file being edited) only costs that file's time.
    compile_package()
    with testbed(prepare) as bed:
        python = install_like_python(bed.scratch / "venv")
        # The tests' launcher: the development venv, the repository put on sys.path.
        bed.sandbox.install_cgi("cpanel", DEV_CGI, launcher_text())
        bed.sandbox.install_cgi("cpanel", CPANEL_PAGE, installed_launcher(python))
        enable_plugin_feature(bed.sandbox)
        floor_text = f"#!{python}\nprint('Content-Type: text/plain\\n\\nok')\n"
        bed.sandbox.install_cgi("cpanel", FLOOR_CGI, floor_text)
        client = PageClient.login(bed.sandbox, "page0001")
        html = client.html()
        rows = html.count("page0001.test") + sum(html.count(f"a{i}-page0001.test") for i in (1, 49))
        floor_path, dev_path = (
            client.session.token + PAGE_PATH.replace(CPANEL_PAGE, cgi)
            for cgi in (FLOOR_CGI, DEV_CGI)
        )
        for path in (None, floor_path, dev_path):  # warms the OS caches (and the template cache)
            timed_get(bed, client, path)
        page: list[float] = []
        floor: list[float] = []
        dev: list[float] = []
        page_cpu: list[float] = []
        floor_cpu: list[float] = []
        dev_cpu: list[float] = []
        for _ in range(RUNS):
            page.append(timed_cpu(bed, client, None, page_cpu))
            floor.append(timed_cpu(bed, client, floor_path, floor_cpu))
            dev.append(timed_cpu(bed, client, dev_path, dev_cpu))
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
            f"Home: {cpu_text(page_cpu)}",
            f"empty Python CGI: {cpu_text(floor_cpu)}",
            f"Home on the development venv: {Series('', dev).summary()}, {cpu_text(dev_cpu)}",
            f"`python3 -c pass` alone: {Series('', bare).summary()}",
            f"the page listed the vhosts (sample names found {rows} times)",
        ],
    )
    fig.met = fig.ours.median <= 0.120
    save([fig], "bench_page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
