"""cPanel's hooks queue AutoSSL for an account; Apache restarts are batched under cPanel's flag."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from letsencrypt_cpanel import autossl, service_certs
from letsencrypt_cpanel.apache_restarts import (
    FLAG_PATH,
    HOLDERS_DIR,
    Busy,
    deferred_restarts,
    exclusive,
)
from letsencrypt_cpanel.config import Settings, update_config
from letsencrypt_cpanel.cpanel_hooks import queue_dir, queued_users, take_queued
from letsencrypt_cpanel.errors import Error
from letsencrypt_cpanel.service_certs import hostcert_docroot

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "plugin/hooks/letsencrypt-cpanel-hook"


def run_hook(root: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOOK), *args],
        input=stdin,
        env={"PATH": os.environ["PATH"], "LECP_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_describe_lists_account_and_domain_events(tmp_path: Path) -> None:
    proc = run_hook(tmp_path, "--describe")
    assert proc.returncode == 0, proc.stderr
    hooks = json.loads(proc.stdout)
    events = {(h["category"], h["event"]) for h in hooks}
    assert ("Whostmgr", "Accounts::Create") in events
    assert ("Cpanel", "Api2::AddonDomain::addaddondomain") in events
    assert ("Cpanel", "UAPI::SubDomain::addsubdomain") in events
    assert all(h["stage"] == "post" and h["hook"] == str(HOOK.resolve()) for h in hooks)
    assert all(h.get("escalateprivs") == 1 for h in hooks if h["category"] == "Cpanel")


def test_events_queue_the_account_once_and_never_fail(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    off = run_hook(tmp_path, stdin=json.dumps({"data": {"user": "newbie"}}))
    assert off.returncode == 0 and "AutoSSL is off" in off.stdout
    assert queued_users(settings) == []
    update_config(tmp_path, {"autossl_enabled": True})
    created = {
        "context": {"event": "Accounts::Create"},
        "data": {"user": "newbie", "domain": "n.test"},
    }
    addon = {
        "context": {"event": "Api2::AddonDomain::addaddondomain"},
        "data": {"user": "olduser", "args": {"newdomain": "x.test", "user": "root"}},
    }
    for payload in (created, addon, created):
        proc = run_hook(tmp_path, stdin=json.dumps(payload))
        assert proc.returncode == 0 and proc.stdout.startswith("1 "), proc.stderr
    assert queued_users(settings) == ["newbie", "olduser"]
    assert (queue_dir(settings) / "newbie").stat().st_mode & 0o777 == 0o600
    # Garbage, a path, no user: nothing queued, and cPanel still hears success.
    for text in ("not json", json.dumps({"data": {"user": "../../etc"}}), "{}"):
        proc = run_hook(tmp_path, stdin=text)
        assert proc.returncode == 0 and proc.stdout.startswith("1 ")
    assert sorted(take_queued(settings)) == ["newbie", "olduser"]
    assert take_queued(settings) == []


def _fake_restart_script(root: Path) -> Path:
    script = root / "usr/local/cpanel/scripts/restartsrv_httpd"
    script.parent.mkdir(parents=True)
    log = root / "restarts.log"
    script.write_text(f"#!/bin/sh\necho restarted >> {log}\n")
    script.chmod(0o755)
    return log


def test_one_restart_after_the_last_holder(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    log = _fake_restart_script(tmp_path)
    flag = settings.path(FLAG_PATH)
    # A holder that died without cleaning up (kill -9) is swept by the next one out.
    settings.path(HOLDERS_DIR).mkdir(parents=True)
    (settings.path(HOLDERS_DIR) / "999999999-dead").write_text("")
    with deferred_restarts(settings) as outer:
        assert flag.read_text().startswith("letsencrypt-cpanel:")
        with deferred_restarts(settings) as inner:
            inner.installed()
        # The inner holder restarted for its installs; the outer one still holds the flag.
        assert flag.exists() and log.read_text().count("restarted") == 1
        outer.installed()
    assert not flag.exists() and outer.restarted
    assert log.read_text().count("restarted") == 2
    assert not [p for p in settings.path(HOLDERS_DIR).iterdir() if p.name != ".lock"]
    with deferred_restarts(settings) as idle:
        pass
    assert not idle.restarted and log.read_text().count("restarted") == 2


def test_a_flag_someone_else_wrote_is_left_alone(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    _fake_restart_script(tmp_path)
    flag = settings.path(FLAG_PATH)
    with deferred_restarts(settings):
        flag.write_text("cpanel's own token\n")
    assert flag.read_text() == "cpanel's own token\n"


def test_a_holder_too_old_is_stale_even_if_its_pid_lives(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    log = _fake_restart_script(tmp_path)
    folder = settings.path(HOLDERS_DIR)
    folder.mkdir(parents=True)
    old = folder / f"{os.getpid()}-reused"  # a live pid, but from a holder long gone
    old.write_text("")
    os.utime(old, (1_000_000, 1_000_000))
    with deferred_restarts(settings) as batch:
        batch.installed()
    assert not settings.path(FLAG_PATH).exists() and not old.exists()
    assert log.read_text().count("restarted") == 1


def test_the_hostname_docroot_is_never_in_a_home(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    assert hostcert_docroot(settings) == tmp_path / "usr/local/apache/htdocs"
    for bad in ("/home/bob/public_html", "/home2/x", "relative/path"):
        with pytest.raises(Error):
            hostcert_docroot(dataclasses.replace(settings, hostcert_docroot=bad))


def test_one_run_at_a_time_of_autossl_and_the_service_certificate(tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings(root=tmp_path), hostcert_enabled=True)
    with exclusive(settings, "autossl.lock", "AutoSSL"):
        with pytest.raises(Busy, match="AutoSSL is running already"):
            autossl.run_once(settings, 0.0, force=True)
    with exclusive(settings, "service-cert.lock", "The service certificate"):
        outcome = service_certs.run_once(settings, None, 0.0)  # type: ignore[arg-type]
    assert outcome.action == service_certs.DEFERRED and "running already" in outcome.error
