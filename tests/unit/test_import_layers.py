"""Dependencies point one way: cgi/ -> web/ -> library, daemon/ -> library, cli -> library; and
python-daemon is imported by daemon/letsencrypt-cpaneld alone (never by the library or cli/).

This walks every module of `letsencrypt_cpanel` with `ast` (no imports executed) and fails when the
library reaches upward or sideways into code it must not know.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "letsencrypt_cpanel"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


def _modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def test_walk_finds_the_library() -> None:
    assert any(p.name == "config.py" for p in _modules())


def test_library_never_imports_the_sandbox() -> None:
    bad = {
        str(p.relative_to(PKG)): sorted(
            i for i in _imports(p) if i.split(".")[0] == "cpanel_sandbox"
        )
        for p in _modules()
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_web_imports_web_and_jinja2() -> None:
    offenders = {}
    for p in _modules():
        rel = p.relative_to(PKG)
        if rel.parts[0] == "web":
            continue
        hits = sorted(
            i
            for i in _imports(p)
            if i.split(".")[0] == "jinja2" or i.startswith("letsencrypt_cpanel.web")
        )
        if hits:
            offenders[str(rel)] = hits
    assert offenders == {}


def _python_daemon(imports: set[str]) -> list[str]:
    """Imports of python-daemon (top-level package `daemon`): only daemon/letsencrypt-cpaneld,
    outside the library, may use it."""
    return sorted(i for i in imports if i.split(".")[0] == "daemon")


def _cli(imports: set[str]) -> list[str]:
    return sorted(i for i in imports if i.startswith("letsencrypt_cpanel.cli"))


def test_nothing_in_the_library_imports_python_daemon() -> None:
    # cli/ included: `le-cp daemon` talks to the daemon through its pid file and signals.
    offenders = {str(p.relative_to(PKG)): _python_daemon(_imports(p)) for p in _modules()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_library_does_not_import_cli() -> None:
    offenders = {
        str(p.relative_to(PKG)): _cli(_imports(p))
        for p in _modules()
        if p.relative_to(PKG).parts[0] != "cli"
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_detector_catches_a_violation(tmp_path: Path) -> None:
    # The walker must see relative and absolute forms, or the tests above could never fail.
    probe = PKG / "_probe_tmp.py"
    probe.write_text(
        "from .web import cpanel\nimport jinja2\nimport cpanel_sandbox.uapi\n"
        "import daemon\nfrom daemon.pidfile import TimeoutPIDLockFile\nfrom .cli import main\n"
        "from .state import daemon_pid\n"
    )
    try:
        found = _imports(probe)
    finally:
        probe.unlink()
    assert "letsencrypt_cpanel.web" in found
    assert "jinja2" in found
    assert "cpanel_sandbox.uapi" in found
    assert _python_daemon(found) == [
        "daemon",
        "daemon.pidfile",
        "daemon.pidfile.TimeoutPIDLockFile",
    ]
    assert _cli(found) == ["letsencrypt_cpanel.cli", "letsencrypt_cpanel.cli.main"]
