"""Where one `le-cp ssl issue` spends its time (benchmark 1's breakdown; not part of run_all).

Runs the same steps `le-cp ssl issue --user U NAME` runs, in this process, with a clock on each:
start-up and imports (measured as separate fresh processes), root's side (pinned TLS, WHM
accountsummary, create_user_session), the worker (fork, privilege drop, login), the issue's own
steps as its progress callback reports them, and logout/exit. Prints one line per phase.

    .venv/bin/python bench/profile_issue.py [--runs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from testbed import testbed

USER = "profone"


def fresh(code: str, env: dict[str, str]) -> float:
    best = 1e9
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def one_issue(env: dict[str, str], name: str) -> list[tuple[str, float]]:
    """Phases of one issue, run in-process (the worker is forked as le-cp forks it)."""
    import os

    os.environ.update(env)
    from letsencrypt_cpanel.config import load_settings
    from letsencrypt_cpanel.issuance import Issuer
    from letsencrypt_cpanel.user_jobs import JobContext, RootSide

    marks: list[tuple[str, float]] = [("start", time.time())]
    settings = load_settings()
    root = RootSide.build(settings)
    marks.append(("root: pinned TLS + WHM client", time.time()))
    original_summary = root.whm.accountsummary
    original_session = root.whm.create_user_session

    def summary(user: str):  # type: ignore[no-untyped-def]
        out = original_summary(user)
        marks.append(("root: WHM accountsummary", time.time()))
        return out

    def session(user: str, service: str):  # type: ignore[no-untyped-def]
        out = original_session(user, service)
        marks.append(("root: WHM create_user_session", time.time()))
        return out

    root.whm.accountsummary = summary  # type: ignore[method-assign]
    root.whm.create_user_session = session  # type: ignore[method-assign]

    def job(ctx: JobContext) -> object:
        inner: list[list[object]] = [["worker: fork, drop, login", time.time()]]

        def step(what: str) -> None:
            inner.append([f"issue: before '{what}'", time.time()])

        issuer = Issuer(ctx.api, ctx.store, ctx.settings, progress=step)
        issuer.issue([name])
        inner.append(["issue: install done", time.time()])
        return inner

    inner = root.run_for_user(USER, job)
    end = time.time()
    assert isinstance(inner, list)
    marks += [(str(label), float(t)) for label, t in inner]  # type: ignore[misc]
    marks.append(("worker: logout, exit, summary read", end))
    return marks


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    names = [f"prof{i:02d}.test" for i in range(1, args.runs + 1)]
    with testbed() as bed:
        bed.sandbox.add_user(USER, "profone.test", addons=names)
        env = bed.env()
        print(f"python -c pass:                       {fresh('pass', env) * 1000:6.0f} ms")
        for module in (
            "letsencrypt_cpanel.cli",
            "letsencrypt_cpanel.cli.ssl_commands",
            "letsencrypt_cpanel.user_jobs",
            "letsencrypt_cpanel.issuance",
            "acme.client",
            "requests",
            "cryptography.x509",
        ):
            took = fresh(f"import {module}", env)
            print(f"python -c 'import {module}': {took * 1000:6.0f} ms")
        for name in names:
            marks = one_issue(env, name)
            print(f"--- {name}: {(marks[-1][1] - marks[0][1]) * 1000:.0f} ms in process")
            for (_, before), (label, at) in itertools.pairwise(marks):
                print(f"  {(at - before) * 1000:7.1f} ms  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
