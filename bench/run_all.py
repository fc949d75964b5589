"""`make bench`: every benchmark, one after another (each in its own process, so one failing does
not stop the others), then one table with the machine it ran on.

    .venv/bin/python bench/run_all.py [--only issue,page,...] [--markdown FILE]

Benchmark 2 (AutoSSL over a whole server) runs only when `le-cp autossl run` exists.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed import HEADER, LE_CP, OUT, REPO, Figure, load

# In the order the issue lists them; names are the scripts' (bench_<name>.py).
BENCHMARKS = ["issue", "autossl", "cycle_idle", "page", "cycle_due"]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores (nproc), {cpu}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )


def autossl_available() -> bool:
    proc = subprocess.run(
        [*LE_CP, "autossl", "--help"], capture_output=True, text=True, check=False, cwd=REPO
    )
    return proc.returncode == 0 and "run" in proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated: " + ",".join(BENCHMARKS))
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--table-only", action="store_true", help="print the table of the last runs' figures"
    )
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else BENCHMARKS
    figures: list[Figure] = []
    missing: list[str] = []
    for name in chosen if args.table_only else []:
        if (OUT / f"bench_{name}.json").exists():
            figures += load(f"bench_{name}")
        else:
            missing.append(f"{name}: no figures in {OUT}")
    for name in [] if args.table_only else chosen:
        script = REPO / "bench" / f"bench_{name}.py"
        if name == "autossl" and (not script.exists() or not autossl_available()):
            missing.append("2 (AutoSSL over a whole server): `le-cp autossl run` is not there yet")
            continue
        if not script.exists():
            missing.append(f"{name}: no script bench/bench_{name}.py")
            continue
        (OUT / f"bench_{name}.json").unlink(missing_ok=True)
        print(f"=== bench_{name}.py", flush=True)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, str(script)], cwd=REPO, check=False)
        print(f"=== bench_{name}.py took {time.monotonic() - started:.0f} s", flush=True)
        if proc.returncode != 0 or not (OUT / f"bench_{name}.json").exists():
            missing.append(f"{name}: the script failed (exit {proc.returncode}), see above")
            continue
        figures += load(f"bench_{name}")
    figures.sort(key=lambda f: f.bench)
    rows = [HEADER, ["---"] * len(HEADER), *(f.row() for f in figures)]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", *(f"- [{f.bench}] {note}" for f in figures for note in f.notes)]
    lines += [*(f"- not measured: {m}" for m in missing), "", f"Machine: {machine()}"]
    text = "\n".join(lines)
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
