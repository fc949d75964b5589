"""requirements.lock pins exactly what the tests ran with: every runtime dependency of
pyproject.toml and everything they need, at the versions installed in the dev venv."""

from __future__ import annotations

import importlib.metadata as md
import re

import tomllib
from packaging.requirements import Requirement

from tests.install.conftest import REPO


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def closure() -> dict[str, str]:
    """The runtime dependencies and theirs, as installed here (extras and markers honoured)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    found: dict[str, str] = {}
    while todo:
        req = todo.pop()
        key = re.sub(r"[-_.]+", "-", req.name).lower()
        if key in found:
            continue
        dist = md.distribution(req.name)
        found[key] = dist.version
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return found


def test_lock_pins_the_whole_runtime_closure_at_the_tested_versions() -> None:
    assert locked() == closure()
