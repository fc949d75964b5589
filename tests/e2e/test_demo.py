"""`make demo` in its one-shot form: it must prove a real certificate, or fail saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_once_proves_a_certificate() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools/demo.py")],
        env={**os.environ, "DEMO_ONCE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "the proof held" in proc.stdout
    assert "shop.demo.test, www.shop.demo.test" in proc.stdout
    assert "/login/?session=" in proc.stdout
