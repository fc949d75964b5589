"""install.sh against a sandbox root: the cPanel scripts are the sandbox's recording stand-ins,
and the service tools (systemctl, service, chkconfig, cagefsctl) are recording stand-ins laid
under the root here; install.sh finds its tools under LECP_ROOT, so nothing on the host is
touched. Dependencies come from the dev venv (LECP_INSTALL_SITE_PACKAGES), not the network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.sandbox import make_sandbox_root, run_cli

REPO = Path(__file__).resolve().parents[2]
OPT = "/opt/letsencrypt-cpanel"
# The interpreter the dev venv was made from: the venv under test is made from it too, so the
# dev venv's site-packages (compiled for it) can stand in for the pinned dependencies.
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
SOURCE_FILES = [
    "letsencrypt_cpanel",
    "templates",
    "cgi",
    "daemon",
    "plugin",
    "systemd",
    "sysvinit",
    "checksrvd",
    "install.sh",
    "install-lib.sh",
    "uninstall.sh",
    "requirements.lock",
    "README.md",
]
RECORDER = """#!{python}
import sys
from pathlib import Path

sys.path.insert(0, {repo!r})
from cpanel_sandbox.standins import record

record(Path({root!r}), {name!r}, sys.argv[1:])
"""


@dataclass
class Server:
    """A sandbox root shaped like a cPanel server, and ways to run the installer on it."""

    root: Path
    source: Path = REPO

    def add_tool(self, relative: str) -> None:
        """A recording stand-in for a system tool (e.g. `usr/bin/systemctl`)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = RECORDER.format(
            python=sys.executable, repo=str(REPO), root=str(self.root), name=path.name
        )
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)

    def use_systemd(self) -> None:
        (self.root / "run/systemd/system").mkdir(parents=True, exist_ok=True)
        self.add_tool("usr/bin/systemctl")

    def use_sysvinit(self) -> None:
        self.add_tool("usr/sbin/service")
        self.add_tool("usr/sbin/chkconfig")

    def run(self, script: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "LECP_ROOT": str(self.root),
            "PYTHON": str(BASE_PYTHON),
            "LECP_INSTALL_SITE_PACKAGES": sysconfig.get_path("purelib"),
        }
        env.pop("PYTHONPATH", None)
        proc = subprocess.run(
            ["/bin/bash", str(script), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def install(self, source: Path | None = None) -> list[str]:
        """Run install.sh from `source` (default: this test run's copy of the source tree);
        the commands it ran (root prefix dropped)."""
        return self._commands_of(lambda: self.run((source or self.source) / "install.sh"))

    def uninstall(self, *args: str) -> list[str]:
        """Run the installed copy of uninstall.sh, as an admin without the source tree would."""
        return self._commands_of(lambda: self.run(self.path(f"{OPT}/uninstall.sh"), *args))

    def _commands_of(self, action: Callable[[], object]) -> list[str]:
        log = self.root / "var/cpanel/sandbox-commands.log"
        log.unlink(missing_ok=True)
        action()
        if not log.exists():
            return []
        lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        prefix = str(self.root)
        return [
            " ".join([line["cmd"], *(a.replace(prefix, "") for a in line["argv"])])
            for line in lines
        ]

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def snapshot(self) -> dict[str, str]:
        """Every file, link and folder under the root: owner, mode, and for files the content
        digest and the modification time (a file rewritten with the same bytes still counts)."""
        seen: dict[str, str] = {}
        for folder, dirs, files in os.walk(self.root):
            for name in [*dirs, *files]:
                path = Path(folder) / name
                rel = str(path.relative_to(self.root))
                if rel == "var/cpanel/sandbox-commands.log":
                    continue
                st = path.lstat()
                if path.is_symlink():
                    seen[rel] = f"link {os.readlink(path)}"
                elif path.is_file():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    seen[rel] = f"{st.st_uid}:{st.st_gid} {st.st_mode:o} {digest} {st.st_mtime_ns}"
                else:
                    seen[rel] = f"{st.st_uid}:{st.st_gid} {st.st_mode:o}"
        return seen

    def tokens(self) -> list[str]:
        """Names of root's WHM API tokens."""
        data = json.loads(
            self.path("/var/cpanel/authn/api_tokens_v2/whostmgr/root.json").read_text()
        )
        return sorted(t["name"] for t in data["tokens"].values())


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source tree as it was when the tests started: a second install must see the very
    same code as the first, even while someone edits the checkout."""
    return copy_source(tmp_path_factory.mktemp("source"))


@pytest.fixture
def server(source_tree: Path) -> Iterator[Server]:
    root = make_sandbox_root()
    run_cli("init", str(root))
    try:
        server = Server(root, source_tree)
        server.add_tool("usr/local/cpanel/bin/manage_hooks")  # cPanel's, not in the sandbox
        yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


def copy_source(target: Path) -> Path:
    """A copy of the source tree (what an admin unpacks), to install a changed version from."""
    for name in SOURCE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target / name)
    return target
