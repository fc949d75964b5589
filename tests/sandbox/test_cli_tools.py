"""The sandbox's command line and the real `uapi`/`whmapi1`/stand-in executables it installs
(cpanel-api.md §1.2, §1.5, §5), run as root and as a sandbox uid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from cpanel_sandbox import accounts, layout, sessions
from tests.sandbox.conftest import validate_uapi
from tests.sandbox.pki import TestCA, rsa_key

REPO = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs tools as another uid")


def sandbox_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cpanel_sandbox", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def tool(root: Path, name: str, *args: str, uid: int | None = None) -> tuple[int, Any, str]:
    """Run ROOT/usr/local/cpanel/bin/<name>; returns (exit code, parsed JSON or None, stderr)."""
    extra: dict[str, Any] = {}
    if uid is not None:
        extra = {"user": uid, "group": uid, "extra_groups": []}
    proc = subprocess.run(
        [str(root / "usr/local/cpanel/bin" / name), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        **extra,
    )
    parsed = json.loads(proc.stdout) if proc.stdout.startswith("{") else None
    return proc.returncode, parsed, proc.stderr


def test_init_and_add_user_from_the_command_line(root: Path) -> None:
    proc = sandbox_cli("init", root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == layout.root_token_file(root).read_text().strip()
    proc = sandbox_cli(
        "add-user",
        root,
        "erin",
        "--domain",
        "erin.test",
        "--addon",
        "shop.test",
        "--sub",
        "blog.erin.test",
        "--parked",
        "erin.example",
        "--email",
        "e@mail.test",
        "--owner",
        "root",
    )
    assert proc.returncode == 0, proc.stderr
    assert set(accounts.all_domains(root, "erin")) == {
        "erin.test",
        "shop.test",
        "blog.erin.test",
        "erin.example",
    }
    proc = sandbox_cli("add-user", root, "erin", "--domain", "again.test")
    assert proc.returncode == 1 and "already exists" in proc.stderr


def test_init_refuses_untraversable_root(tmp_path: Path) -> None:
    private = tmp_path / "closed"
    private.mkdir(mode=0o700)
    proc = sandbox_cli("init", private / "root")
    assert proc.returncode == 1
    assert "is not traversable by every uid" in proc.stderr and "lacks the o+x" in proc.stderr


def test_login_needs_a_serving_sandbox(root: Path, alice: str) -> None:
    proc = sandbox_cli("login", root, alice)
    assert proc.returncode == 1 and "not serving" in proc.stderr
    state = {"pid": os.getpid(), "cpanel_port": 41000, "whm_port": 41001}
    layout.write_file(layout.sandbox_json(root), json.dumps(state))
    proc = sandbox_cli("login", root, alice)
    assert proc.returncode == 0, proc.stderr
    url = urllib.parse.urlsplit(proc.stdout.strip())
    assert url.port == 41000 and url.path.startswith("/cpsess")
    session = sessions.redeem_login(root, urllib.parse.parse_qs(url.query)["session"][0])
    assert session is not None and session.user == alice and session.service == "cpaneld"
    proc = sandbox_cli("login", root, "root", "--service", "whostmgrd")
    assert urllib.parse.urlsplit(proc.stdout.strip()).port == 41001
    assert sandbox_cli("login", root, "ghost").returncode == 1


def test_uapi_as_root_wraps_the_result(root: Path, alice: str) -> None:
    code, out, _ = tool(
        root, "uapi", f"--user={alice}", "--output=json", "DomainInfo", "list_domains"
    )
    assert code == 0
    assert set(out) == {"apiversion", "func", "module", "result"}
    assert out["apiversion"] == 3 and out["module"] == "DomainInfo"
    assert out["func"] == "list_domains"
    validate_uapi("DomainInfo", "list_domains", out["result"])
    assert out["result"]["data"]["main_domain"] == "example.com"
    code, out, _ = tool(
        root, "uapi", f"--user={alice}", "--output=json", "Variables", "get_user_information",
        "name=home", "name-1=contact_email", "name-2=contact%5Femail%5F2",
    )  # fmt: skip
    assert list(out["result"]["data"]) == ["home", "contact_email", "contact_email_2"]
    code, out, err = tool(root, "uapi", "--output=json", "DomainInfo", "list_domains")
    assert code == 1 and out is None and "--user" in err
    code, out, _ = tool(root, "uapi", "DomainInfo", "list_domains", "--output=json", "--user=alice")
    assert code == 0 and out["result"]["status"] == 1


@needs_root
def test_uapi_run_by_the_user_acts_as_that_user(root: Path, alice: str) -> None:
    entry = accounts.passwd_entry(root, alice)
    assert entry is not None
    code, out, err = tool(
        root, "uapi", "--output=json", "Variables", "get_user_information", "name=user",
        uid=entry.uid,
    )  # fmt: skip
    assert code == 0, err
    assert out["result"]["data"] == {"user": "alice"}
    code, out, _ = tool(root, "uapi", "--output=json", "SSL", "list_certs", uid=entry.uid)
    assert out["result"]["status"] == 1 and out["result"]["data"] == []
    code, _, err = tool(root, "whmapi1", "--output=json", "gethostname", uid=entry.uid)
    assert code == 1 and "root" in err


def _pem_with_plus(ca: TestCA) -> tuple[str, str]:
    for slot in range(3, 20):
        leaf = ca.leaf(["example.com"], key=rsa_key(slot))
        if "+" in leaf.cert and "+" in leaf.key:
            return leaf.cert, leaf.key
    raise AssertionError("no PEM with a '+' in 17 tries")


def test_uapi_form_decodes_values(root: Path, alice: str, ca: TestCA) -> None:
    cert, key = _pem_with_plus(ca)
    base = [f"--user={alice}", "--output=json", "SSL", "install_ssl", "domain=example.com"]

    # A raw '+' is a space to cPanel's decoder (§1.2): the certificate no longer parses.
    code, out, _ = tool(root, "uapi", *base, f"cert={cert}", f"key={key}")
    assert out["result"]["status"] == 0
    assert out["result"]["errors"][0].startswith("The system could not parse the certificate")

    # Fully percent-encoded (quote(v, safe='')): '+' travels as %2B.
    full = [f"cert={urllib.parse.quote(cert, safe='')}", f"key={urllib.parse.quote(key, safe='')}"]
    assert "%2B" in full[0]
    code, out, _ = tool(root, "uapi", *base, *full)
    validate_uapi("SSL", "install_ssl", out["result"])
    assert out["result"]["status"] == 1, out["result"]["errors"]

    # Form encoding: spaces as '+', a real '+' as %2B.
    form = [f"cert={urllib.parse.quote_plus(cert)}", f"key={urllib.parse.quote_plus(key)}"]
    assert "BEGIN+CERTIFICATE" in form[0]
    code, out, _ = tool(root, "uapi", *base, *form)
    assert code == 0 and out["result"]["status"] == 1, out["result"]["errors"]
    assert out["result"]["data"]["action"] == "update"


def test_whmapi1_prints_the_plain_envelope(root: Path, alice: str) -> None:
    code, out, _ = tool(root, "whmapi1", "--output=json", "gethostname")
    assert code == 0
    assert out == {
        "metadata": {"command": "gethostname", "version": 1, "result": 1, "reason": "OK"},
        "data": {"hostname": "server.sandbox.test"},
    }
    code, out, _ = tool(
        root, "whmapi1", "--output=json", "listaccts", "search=alice", "searchtype=user"
    )
    assert [a["user"] for a in out["data"]["acct"]] == ["alice"]
    proc = subprocess.run(
        [str(root / "usr/local/cpanel/bin/whmapi1"), "gethostname"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.startswith("---\n") and "hostname: server.sandbox.test" in proc.stdout


def _log(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in layout.commands_log(root).read_text().splitlines()]


def test_stand_in_scripts_record_and_answer(root: Path, tmp_path: Path) -> None:
    conf = tmp_path / "acme-ssl.conf"
    conf.write_text("name=acme-ssl\nservice=whostmgr\nuser=root\nurl=/cgi/acme-ssl/index.cgi\n")
    proc = subprocess.run(
        [str(root / "usr/local/cpanel/bin/register_appconfig"), str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout == "acme-ssl registered\n"
    assert (layout.cpanel_var(root) / "apps/acme-ssl.conf").read_text() == conf.read_text()
    assert _log(root)[-1] == {"cmd": "register_appconfig", "argv": [str(conf)], "uid": os.getuid()}

    plugin = tmp_path / "plugin"
    plugin.mkdir()
    script = str(root / "usr/local/cpanel/scripts/install_plugin")
    proc = subprocess.run([script, str(plugin)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "install.json" in proc.stderr
    (plugin / "install.json").write_text("[]")
    args = [str(plugin), "--theme", "jupiter"]
    proc = subprocess.run([script, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert _log(root)[-1]["argv"] == args

    proc = subprocess.run(
        [str(root / "usr/local/cpanel/scripts/restartsrv_httpd")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "httpd" in proc.stdout
    proc = subprocess.run(
        [str(root / "usr/local/cpanel/bin/unregister_appconfig"), str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "acme-ssl unregistered\n"
    assert not (layout.cpanel_var(root) / "apps/acme-ssl.conf").exists()
    assert [e["cmd"] for e in _log(root)][-2:] == ["restartsrv_httpd", "unregister_appconfig"]
