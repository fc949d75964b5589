"""The installer's shell scripts are shellcheck-clean (Debian package `shellcheck`, make deps)."""

from __future__ import annotations

import subprocess

from tests.install.conftest import REPO

SCRIPTS = ["install.sh", "install-lib.sh", "uninstall.sh", "sysvinit/letsencrypt-cpanel"]


def test_shell_scripts_pass_shellcheck() -> None:
    proc = subprocess.run(
        ["shellcheck", "-x", *SCRIPTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shell_scripts_stop_on_the_first_error() -> None:
    for script in ["install.sh", "uninstall.sh", "sysvinit/letsencrypt-cpanel"]:
        assert "\nset -euo pipefail\n" in (REPO / script).read_text(), script
