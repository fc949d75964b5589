"""What every benchmark shares: Pebble + a sandbox + le-cp wired together, certbot in its own
venv, timing and the figures each script prints (and leaves in bench/out/ for run_all.py).

Benchmarks print figures; they are not tests. Pebble always runs with PEBBLE_VA_NOSLEEP=1 and
PEBBLE_WFE_NONCEREJECT=0 (tests/fixtures/pebble.py sets both; pebble.md §7.1).
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fixtures.lecp import LeCp, configure  # noqa: E402
from tests.fixtures.pebble import PebbleInstance, free_port, start_pebble  # noqa: E402
from tests.fixtures.sandbox import RunningSandbox, make_sandbox_root, start_sandbox  # noqa: E402

OUT = REPO / "bench" / "out"
CERTBOT_VENV = REPO / "bench" / ".venv-certbot"
CERTBOT = CERTBOT_VENV / "bin" / "certbot"
LE_CP = [sys.executable, "-m", "letsencrypt_cpanel.cli"]
DAEMON = [sys.executable, str(REPO / "daemon" / "letsencrypt-cpaneld")]
# /usr/local/bin/le-cp as install.sh writes it (its first line becomes the venv's Python).
INSTALLED_LE_CP = """import sys

from letsencrypt_cpanel.cli import main

sys.exit(main())
"""


def compile_package() -> None:
    """Byte-compile the package, as install.sh does: code run as a user (the CGIs) cannot write
    __pycache__, and a checkout's missing .pyc would be compiled again on every run. Quiet; a
    failure (a file being edited) only costs that file's time."""
    compileall.compile_dir(str(REPO / "letsencrypt_cpanel"), quiet=2)


def install_like_python(folder: Path) -> Path:
    """A venv as install.sh makes one with LECP_INSTALL_SITE_PACKAGES (what tests/install use):
    the dependencies (this venv's site-packages) and the code (the repository) on its path
    through .pth files, as `letsencrypt-cpanel-deps.pth` and `letsencrypt-cpanel.pth` put them.
    A .pth line only adds a folder: the .pth files inside it (the editable finder) are not run."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = sysconfig.get_path("purelib")
    (Path(site) / "letsencrypt-cpanel-deps.pth").write_text(deps + "\n", encoding="utf-8")
    (Path(site) / "letsencrypt-cpanel.pth").write_text(f"{REPO}\n", encoding="utf-8")
    return python


def installed_le_cp(folder: Path) -> list[str]:
    """`le-cp` as an install runs it: install.sh's wrapper on an install-like venv in `folder`."""
    python = install_like_python(folder / "venv")
    script = folder / "le-cp"
    script.write_text(f"#!{python}\n{INSTALLED_LE_CP}", encoding="utf-8")
    script.chmod(0o755)
    return [str(script)]


@dataclass
class Series:
    """One measured thing: its samples in seconds (or bytes for memory)."""

    label: str
    samples: list[float]
    unit: str = "s"

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def summary(self) -> str:
        if self.unit == "MB":
            return f"{self.median:.0f} MB"
        if len(self.samples) == 1:
            return _secs(self.samples[0])
        lo, hi = min(self.samples), max(self.samples)
        return f"{_secs(self.median)} ({_secs(lo)}–{_secs(hi)})"


def _secs(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


@dataclass
class Figure:
    """One line of the table: ours against its reference, and the target."""

    bench: str
    what: str
    ours: Series
    reference: Series | None
    target: str
    met: bool | None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    floor: bool = False  # the reference is a floor (nothing can be faster), not a competitor

    @property
    def speedup(self) -> float | None:
        if self.reference is None or not self.ours.median or self.floor:
            return None
        return self.reference.median / self.ours.median

    def row(self) -> list[str]:
        speed = f"{self.speedup:.1f}×" if self.speedup is not None else "—"
        if self.floor and self.reference is not None:
            speed = f"+{(self.ours.median - self.reference.median) * 1000:.0f} ms over the floor"
        verdict = {True: "met", False: "MISSED", None: "—"}[self.met]
        ref = f"{self.reference.label}: {self.reference.summary()}" if self.reference else "—"
        return [self.bench, self.what, self.ours.summary(), ref, speed, self.target, verdict]


def save(figures: Sequence[Figure], name: str) -> None:
    """Print the figures and leave them for run_all.py."""
    OUT.mkdir(parents=True, exist_ok=True)
    data = [asdict(f) for f in figures]
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    print_table(figures)


def load(name: str) -> list[Figure]:
    path = OUT / f"{name}.json"
    out: list[Figure] = []
    for raw in json.loads(path.read_text(encoding="utf-8")):
        ours = Series(**raw.pop("ours"))
        ref = raw.pop("reference")
        out.append(Figure(ours=ours, reference=Series(**ref) if ref else None, **raw))
    return out


HEADER = ["#", "what", "ours: median (min–max)", "reference", "speed-up", "target", "verdict"]


def print_table(figures: Sequence[Figure]) -> None:
    rows = [HEADER, ["---"] * len(HEADER), *(f.row() for f in figures)]
    print("\n".join("| " + " | ".join(r) + " |" for r in rows))
    for f in figures:
        for note in f.notes:
            print(f"  [{f.bench}] {note}")


def timed(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> float:
    """Wall time of one process run to completion; raises with its output when it fails."""
    started = time.perf_counter()
    proc = subprocess.run(
        list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:6])}… failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return took


def peak_rss_run(
    argv: Sequence[str], *, env: dict[str, str] | None = None
) -> tuple[float, float, str, Any]:
    """(wall seconds, peak RSS in MB of the process and of any child it waited for, stderr,
    its resource usage).

    os.wait4 gives this child's rusage; ru_maxrss covers its own descendants too (the largest)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        text = errors.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}… failed ({proc.returncode}):\n{text[-3000:]}")
    return took, usage.ru_maxrss / 1024, text, usage


# ---- the test bed --------------------------------------------------------------------------------


@dataclass
class Bed:
    """A running Pebble and sandbox, le-cp configured for them, and a scratch folder."""

    pebble: PebbleInstance
    sandbox: RunningSandbox
    lecp: LeCp
    scratch: Path

    @property
    def root(self) -> Path:
        return self.sandbox.root

    def lecp_argv(self, *args: str) -> list[str]:
        return [*LE_CP, *args]

    def env(self) -> dict[str, str]:
        return self.lecp.env()

    def docroot(self, user: str, domain: str) -> Path:
        """The vhost's document root, as cPanel's userdata says (what certbot's -w gets)."""
        from cpanel_sandbox import accounts

        for servername in accounts.vhost_servernames(self.root, user):
            data = accounts.vhost_data(self.root, user, servername) or {}
            main = accounts.main_data(self.root, user)
            if domain in accounts.vhost_domains(main, servername):
                return Path(str(data["documentroot"]))
        raise KeyError(domain)

    def certbot(self, name: str = "certbot") -> Certbot:
        return Certbot(self, self.scratch / name)


@contextmanager
def testbed(
    prepare: Callable[[Path, PebbleInstance], None] | None = None,
    *,
    pebble_options: dict[str, Any] | None = None,
) -> Iterator[Bed]:
    """Start Pebble (`pebble_options`: start_pebble's) and a sandbox (after `prepare(root,
    pebble)`, e.g. populate), configure le-cp."""
    scratch = Path(tempfile.mkdtemp(prefix="lecp-bench-", dir="/var/tmp"))
    scratch.chmod(0o755)
    root = make_sandbox_root()
    http_port = free_port()
    pebble = start_pebble(scratch / "pebble", http_port=http_port, **(pebble_options or {}))
    sandbox = None
    try:
        if prepare is not None:
            prepare(root, pebble)
        sandbox = start_sandbox(root, http_port=http_port)
        yield Bed(pebble, sandbox, configure(sandbox, pebble), scratch)
    finally:
        if sandbox is not None:
            sandbox.stop()
        pebble.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Certbot:
    """certbot from PyPI (bench/.venv-certbot) against the bed's Pebble, its own folders."""

    bed: Bed
    base: Path

    def argv(self, *args: str) -> list[str]:
        return [
            str(CERTBOT),
            *("--config-dir", str(self.base / "config")),
            *("--work-dir", str(self.base / "work")),
            *("--logs-dir", str(self.base / "logs")),
            *("--server", self.bed.pebble.directory_url),
            "--non-interactive",
            "--agree-tos",
            "--register-unsafely-without-email",
            *args,
        ]

    def env(self) -> dict[str, str]:
        return {**os.environ, "REQUESTS_CA_BUNDLE": self.bed.pebble.ca_bundle}

    def certonly(self, docroot: Path, *names: str) -> float:
        domains = [arg for n in names for arg in ("-d", n)]
        return timed(
            self.argv("certonly", "--webroot", "-w", str(docroot), *domains), env=self.env()
        )


def require_certbot() -> None:
    if not CERTBOT.exists():
        sys.exit(f"certbot is missing: {CERTBOT} (make bench creates it)")
