"""Benchmark 1: one certificate, one name, as a fresh process.

`le-cp ssl issue --user U NAME` ten times (ten addon domains of one user) against
`certbot certonly --webroot -w <that addon's docroot> -d NAME` ten times (ten other addons of the
same user), same Pebble, same sandbox. Each run is a new process, timed from spawn to exit.
`le-cp` runs as install.sh installs it (its wrapper on a venv that finds the code and the
dependencies through .pth files, the package byte-compiled); the development venv's
`python -m letsencrypt_cpanel.cli` (its editable-install finder loads in every process) is
timed too, as a note.
Target: our median 0.4 s or less, and at least 6× faster than certbot.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import (
    Figure,
    Series,
    compile_package,
    installed_le_cp,
    require_certbot,
    save,
    testbed,
    timed,
)

RUNS = 10
USER = "benchone"
DOMAIN = "benchone.test"


def main() -> int:
    require_certbot()
    ours_names = [f"lecp{i:02d}.test" for i in range(1, RUNS + 1)]
    dev_names = [f"dev{i:02d}.test" for i in range(1, RUNS + 1)]
    certbot_names = [f"certbot{i:02d}.test" for i in range(1, RUNS + 1)]
    compile_package()
    with testbed() as bed:
        bed.sandbox.add_user(USER, DOMAIN, addons=[*ours_names, *dev_names, *certbot_names])
        env = bed.env()
        le_cp = installed_le_cp(bed.scratch)
        ours = [timed([*le_cp, "ssl", "issue", "--user", USER, n], env=env) for n in ours_names]
        dev = [timed(bed.lecp_argv("ssl", "issue", "--user", USER, n), env=env) for n in dev_names]
        certbot = bed.certbot()
        theirs = [certbot.certonly(bed.docroot(USER, n), n) for n in certbot_names]
        # Proof that ours really ended on the site: the last name serves a Pebble certificate.
        served = bed.sandbox.fetch_site_cert(ours_names[-1])
        issuer = served.issuer.rfc4514_string()
    fig = Figure(
        bench="1",
        what=f"one name, fresh process ×{RUNS}: le-cp ssl issue vs certbot certonly --webroot",
        ours=Series("le-cp", ours),
        reference=Series("certbot", theirs),
        target="median ≤ 400 ms and ≥ 6×",
        met=None,
        notes=[
            f"the site now serves a certificate issued by {issuer}",
            f"le-cp on the development venv: {Series('', dev).summary()}",
        ],
    )
    fig.met = fig.ours.median <= 0.4 and (fig.speedup or 0) >= 6
    save([fig], "bench_issue")
    return 0


if __name__ == "__main__":
    sys.exit(main())
