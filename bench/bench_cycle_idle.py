"""Benchmark 3: the 12-hour cycle when nothing is due.

5,000 users with 20,000 plugin certificates (populate --certs), none due, and the daemon's state as
the cycles before left it (every vhost known, `not_due`; the weekly full sweep done): one
`daemon/letsencrypt-cpaneld --once` cycle, its wall time and peak memory (ru_maxrss of the daemon
and of any worker it waited for). No certbot equivalent: certbot has no cPanel to ask.
Target: 10 s and 150 MB or less.

The cycle asks WHM for `listaccts` and `fetch_ssl_vhosts`; against the sandbox those answers cost
what the stand-in costs (Python reading 20,000 vhosts' files), so the same two calls are timed
from a plain client too, and the daemon's own CPU time is printed: wall - WHM = the plugin's part.

    .venv/bin/python bench/bench_cycle_idle.py [USERS VHOSTS]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import DAEMON, Bed, Figure, Series, save, testbed

from cpanel_sandbox import populate
from tests.fixtures.pebble import PebbleInstance

RUNS = 3

# The daemon is started by a small helper process, never by this one: a child started here goes
# through vfork+exec and its ru_maxrss starts at this process's own high-water mark (populate and
# the WHM answers parsed above take it to ~200 MB), which is then reported as the daemon's.
_HELPER = """
import json, os, subprocess, sys, time
argv, env, log = json.load(sys.stdin)
with open(log, "wb") as stderr:
    started = time.perf_counter()
    pid = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr).pid
    _, status, usage = os.wait4(pid, 0)
print(json.dumps([time.perf_counter() - started, usage.ru_maxrss / 1024,
                  usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)]))
"""


def daemon_once(bed: Bed) -> tuple[float, float, float, str]:
    """One `--once` cycle: (wall s, peak RSS MB of the daemon and the largest process it waited
    for, CPU s, its log)."""
    log = bed.scratch / "daemon-once.log"
    request = json.dumps([[*DAEMON, "--once"], bed.env(), str(log)])
    helper = subprocess.run(
        [sys.executable, "-c", _HELPER], input=request, capture_output=True, text=True, check=True
    )
    took, peak, cpu, code = json.loads(helper.stdout)
    text = log.read_text(encoding="utf-8", errors="replace")
    if code != 0:
        raise RuntimeError(f"daemon --once failed ({code}):\n{text[-3000:]}")
    return took, peak, cpu, text


def prime_state(bed: Bed, users: list[str]) -> int:
    """The state a previous full sweep leaves: one `not_due` row per certificate, each user run,
    the sweep's time. Read from the records directly (the bench is root; the daemon never does)."""
    from letsencrypt_cpanel.config import load_settings
    from letsencrypt_cpanel.record_format import Record
    from letsencrypt_cpanel.renewal import LAST_FULL_SWEEP
    from letsencrypt_cpanel.state import StateDB, UserState, VhostState

    settings = load_settings(bed.env())
    now = int(time.time())
    rows = 0
    with StateDB.open(settings) as db, db.transaction():
        for user in users:
            path = bed.root / "home" / user / ".cpanel" / "nvdata" / "letsencrypt-cpanel"
            record = Record.from_json(path.read_text(encoding="utf-8"))
            for vhost, cert in record.certificates.items():
                state = VhostState(
                    user, vhost, "not_due", tuple(cert.names), cert.not_before, cert.not_after,
                    populate.CA_NAME, 0, "", now, 0,
                )  # fmt: skip
                db.put_vhost(state, now)
                rows += 1
            db.put_user(UserState(user, now, 0, "", 0, False))
        db.add_issuer(populate.CA_NAME, now)
        db.set_meta(LAST_FULL_SWEEP, str(now))
    return rows


def whm_time(bed: Bed, func: str) -> tuple[float, int]:
    auth = {"Authorization": f"whm root:{bed.sandbox.whm_token}"}
    path = f"/json-api/{func}?api.version=1"
    started = time.perf_counter()
    reply = bed.sandbox.request(bed.sandbox.whm_port, "GET", path, headers=auth, timeout=900)
    took = time.perf_counter() - started
    data = json.loads(reply.body)["data"]
    return took, len(data.get("acct") or data.get("vhosts") or [])


def main() -> int:
    users_n, vhosts_n = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (5000, 20000)
    made: list[populate.PopulateResult] = []

    def prepare(root: Path, pebble: PebbleInstance) -> None:
        made.append(
            populate.populate(
                root, users_n, vhosts_n, with_certs=True, directory=pebble.directory_url
            )
        )

    with testbed(prepare) as bed:
        built = made[0]
        rows = prime_state(bed, built.users)
        # The first calls fill the sandbox's parse caches (cPanel keeps such caches too).
        whm_time(bed, "listaccts")
        whm_time(bed, "fetch_ssl_vhosts")
        accts_s, accts = whm_time(bed, "listaccts")
        vhosts_s, vhosts = whm_time(bed, "fetch_ssl_vhosts")
        walls: list[float] = []
        peaks: list[float] = []
        cpu: list[float] = []
        log = ""
        for _ in range(RUNS):
            took, peak, seconds, log = daemon_once(bed)
            walls.append(took)
            peaks.append(peak)
            cpu.append(seconds)
    found = re.search(r"renewal cycle: (\d+) account\(s\), (\d+) with work", log)
    work = f"{found.group(1)} accounts, {found.group(2)} with work" if found else "no cycle line"
    fig = Figure(
        bench="3",
        what=f"idle 12-hour cycle: {users_n} users, {vhosts_n} certificates, none due (×{RUNS})",
        ours=Series("daemon --once", walls),
        reference=None,
        target="≤ 10 s and ≤ 150 MB",
        met=max(peaks) <= 150 and Series("", walls).median <= 10,
        notes=[
            f"peak memory (ru_maxrss): {max(peaks):.0f} MB; daemon CPU: "
            f"{Series('', cpu).summary()}; the cycle saw {work}",
            f"WHM from a plain client: listaccts {accts_s:.2f} s ({accts} accounts), "
            f"fetch_ssl_vhosts {vhosts_s:.2f} s ({vhosts} vhosts): the sandbox's share",
            f"populate --certs built the server in {built.seconds:.1f} s; "
            f"state primed: {rows} rows",
        ],
        extra={"peak_mb": max(peaks), "whm_s": accts_s + vhosts_s},
    )
    save([fig], "bench_cycle_idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
