"""Home is a CGI started per request: it must not load `acme`, `josepy`, `requests` or
cryptography's key generation, and the JSON API (which renders nothing) not even Jinja2. The
launcher runs here exactly as cpsrvd starts it (as the user, with a LiveAPI socket and cpsrvd's
environment), and reports which modules it loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cpanel_sandbox import accounts, liveapi
from tests.fixtures.plugin_pages import LAUNCHER, REPO, new_user
from tests.fixtures.sandbox import RunningSandbox

# Runs the launcher file itself, then lists what it imported (stderr, after the page).
RUNNER = """
import gc, json, runpy, sys
sys.path.insert(0, sys.argv[1])
runpy.run_path(sys.argv[2], run_name="__main__")
sys.stdout.flush()
sys.stderr.write("\\nGC=" + json.dumps([gc.isenabled(), gc.get_freeze_count()]))
sys.stderr.write("\\nMODULES=" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def _heavy(modules: list[str]) -> list[str]:
    return [
        m
        for m in modules
        if m.split(".")[0] in ("acme", "josepy", "requests")
        or m.startswith("cryptography.hazmat.primitives.asymmetric.")
        or m.startswith("letsencrypt_cpanel.issuance")
    ]


def _jinja(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in ("jinja2", "markupsafe")]


def _run_page(
    sandbox: RunningSandbox, user: str, query: str, accept: str = "text/html"
) -> tuple[str, list[str]]:
    entry = accounts.passwd_entry(sandbox.root, user)
    assert entry is not None
    folder = Path(tempfile.mkdtemp(prefix="live-", dir=sandbox.root))
    folder.chmod(0o711)
    with liveapi.serving(sandbox.root, user, entry.uid, entry.gid, folder) as socket_path:
        env = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": "GET",
            "QUERY_STRING": query,
            "SCRIPT_NAME": "/frontend/jupiter/letsencrypt-cpanel/letsencrypt.live.cgi",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "2083",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTPS": "on",
            "HTTP_ACCEPT": accept,
            "REMOTE_USER": user,
            "cp_security_token": "/cpsess0123456789",
            "CPANEL_CONNECT_SOCKET": str(socket_path),
            "HOME": str(entry.home),
            "LECP_ROOT": str(sandbox.root),
            "PATH": "/usr/bin:/bin",
        }
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(REPO), str(LAUNCHER)],
            env=env,
            cwd="/",
            user=entry.uid,
            group=entry.gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stderr.rsplit("MODULES=", 1)[1])
    enabled, frozen = json.loads(proc.stderr.rsplit("GC=", 1)[1].split("\n", 1)[0])
    # The launcher keeps the cyclic collector off while the modules load and freezes what they
    # made (bench/bench_page.py), but the request itself runs with it on: an issue can take
    # minutes in this process.
    assert enabled, "the launcher left the garbage collector off"
    assert frozen > 1000, f"the launcher froze {frozen} objects: the loaded modules are scanned"
    return proc.stdout, modules


@pytest.mark.parametrize(
    ("query", "words", "allowed"),
    [
        ("", "Your websites", ()),
        ("action=issue&vhost={domain}", "Key type", ()),
        ("action=settings", "E-mail me", ()),
    ],
)
def test_home_loads_no_acme_requests_or_key_generation(
    cpanel_page: RunningSandbox, query: str, words: str, allowed: tuple[str, ...]
) -> None:
    user, domain = new_user(cpanel_page, "light")
    out, modules = _run_page(cpanel_page, user, query.format(domain=domain))
    assert out.startswith("Status: 200 OK"), out[:500]
    assert words in out
    heavy = [m for m in _heavy(modules) if not m.startswith(allowed)]
    assert heavy == [], f"the page imported {heavy}"
    assert "jinja2" in modules  # an HTML page renders: proof that the JSON test below can fail


def test_json_list_loads_no_jinja2(cpanel_page: RunningSandbox) -> None:
    # The JSON API renders no template: it must not pay for importing Jinja2 (15-20 ms a call).
    user, domain = new_user(cpanel_page, "lightjson")
    out, modules = _run_page(cpanel_page, user, "action=list", accept="application/json")
    assert out.startswith("Status: 200 OK"), out[:500]
    assert domain in out
    assert _heavy(modules) == [] and _jinja(modules) == [], modules


def test_the_runner_would_see_heavy_modules(cpanel_page: RunningSandbox) -> None:
    # View parses certificates with cryptography, so the same check must catch that import:
    # proof that an empty list above means something.
    user, domain = new_user(cpanel_page, "heavy")
    _out, modules = _run_page(cpanel_page, user, f"action=view&vhost={domain}")
    assert any(m.startswith("cryptography.hazmat.primitives.asymmetric.") for m in _heavy(modules))
