"""External Account Binding (RFC 8555 §7.3.4) against a Pebble that requires it, with the HMAC
key kept by root: refused without EAB, issued with it, and the key is never in the worker
(memory read through /proc/<pid>/mem while it runs, argv, environment)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.root_service import RootServiceError, ask_root, serve_root_socket
from letsencrypt_cpanel.system_users import lookup_user
from tests.fixtures.ca_bed import Bed, running_bed
from tests.fixtures.lecp import LE_CP

KID = "kid-1"
HMAC_KEY = secrets.token_bytes(32)
HMAC_TEXT = base64.urlsafe_b64encode(HMAC_KEY).decode().rstrip("=")
NEEDLES = (HMAC_KEY, HMAC_TEXT.encode(), base64.b64encode(HMAC_KEY))


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    config = {"externalAccountBindingRequired": True, "externalAccountMACKeys": {KID: HMAC_TEXT}}
    with running_bed(tmp_path_factory.mktemp("eab"), extra_config=config) as running:
        yield running


# -- reading another process, as root ---------------------------------------------------------

_MAP = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
_CHUNK = 8 << 20


def memory_holds(pid: int, needles: tuple[bytes, ...]) -> bool:
    """Whether any needle is in the readable memory of `pid` (root reads a non-dumpable
    process's memory through /proc/<pid>/mem with CAP_SYS_PTRACE)."""
    longest = max(len(n) for n in needles)
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            found = _MAP.match(line)
            if not found or "r" not in found.group(3) or found.group(4) in ("[vvar]", "[vsyscall]"):
                continue
            start, end = int(found.group(1), 16), int(found.group(2), 16)
            tail = b""
            while start < end:
                size = min(_CHUNK, end - start)
                try:
                    mem.seek(start)
                    chunk = tail + mem.read(size)
                except (OSError, ValueError, OverflowError):
                    break
                if any(n in chunk for n in needles):
                    return True
                tail, start = chunk[-longest:], start + size
    return False


def pids_of_uid(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uids = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        if uids and int(uids.group(1)) == uid:
            found.append(int(entry.name))
    return found


class WorkerWatch:
    """Scans every process of `uid` while a command runs: stopped (SIGSTOP) for a consistent
    read of argv, environment and memory, then resumed."""

    def __init__(self, uid: int) -> None:
        self.uid = uid
        self.memory_scans = 0
        self.hits: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _scan(self, pid: int) -> None:
        try:
            os.kill(pid, 19)  # SIGSTOP
        except ProcessLookupError:
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            for where, data in (("argv", cmdline), ("environment", environ)):
                if any(n in data for n in NEEDLES):
                    self.hits.append(f"{pid} {where}")
            if memory_holds(pid, NEEDLES):
                self.hits.append(f"{pid} memory")
            self.memory_scans += 1
        except (FileNotFoundError, ProcessLookupError):
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 18)  # SIGCONT

    def _loop(self) -> None:
        while not self.stop.is_set():
            for pid in pids_of_uid(self.uid):
                self._scan(pid)
            time.sleep(0.01)

    def __enter__(self) -> WorkerWatch:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_refused_without_eab_issued_with_it_and_the_key_never_reaches_the_worker(
    bed: Bed,
) -> None:
    user = bed.new_user("eab", "eab.test")
    uid = lookup_user(Settings(root=bed.root), user).uid

    proc = bed.lecp.run("ssl", "issue", "--user", user, "eab.test")
    assert proc.returncode == 1
    assert "External Account Binding" in proc.stderr and "eab_kid" in proc.stderr

    bed.lecp.ok("config", "set", "eab_kid", KID)
    proc = bed.lecp.run("config", "set", "eab_hmac_key", input_text=HMAC_TEXT + "\n")
    assert proc.returncode == 0, proc.stderr
    key_file = bed.root / "etc/letsencrypt-cpanel.eab-hmac-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # Root's secrets file (read by every root process that forks workers) does not hold it.
    secrets_file = bed.root / "etc/letsencrypt-cpanel.secrets"
    assert HMAC_TEXT not in secrets_file.read_text()

    with WorkerWatch(uid) as watch:
        lecp = subprocess.Popen(
            [*LE_CP, "ssl", "issue", "--user", user, "eab.test"],
            env=bed.lecp.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = lecp.communicate(timeout=120)
    assert lecp.returncode == 0, err
    assert "Issued" in out
    assert "Pebble" in bed.sandbox.fetch_site_cert("eab.test").issuer.rfc4514_string()
    assert watch.memory_scans >= 1, "the worker was never seen running"
    assert watch.hits == []
    print(f"\nthe worker's memory was read {watch.memory_scans} times: no EAB key in it")


def test_the_scanner_finds_a_key_a_process_did_read(bed: Bed, tmp_path: Path) -> None:
    """The positive control for the test above: a process that read the key file is caught."""
    key_file = bed.root / "etc/letsencrypt-cpanel.eab-hmac-key"
    if not key_file.exists():
        key_file.write_text(HMAC_TEXT + "\n")
    reader = subprocess.Popen(
        [
            "python3",
            "-c",
            "import sys,time; k=open(sys.argv[1]).read(); print(1, flush=True); time.sleep(30)",
            str(key_file),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == b"1"
        assert memory_holds(reader.pid, NEEDLES)
    finally:
        reader.kill()
        reader.wait()


# -- the root service itself ------------------------------------------------------------------


@pytest.fixture
def service(bed: Bed, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The root service on a private path, answering one sandbox user's uid alone."""
    user = bed.new_user("sock", "sock.test")
    uid = lookup_user(Settings(root=bed.root), user).uid
    settings = Settings(root=bed.root, acme_directory=bed.pebble.directory_url, eab_kid=KID)
    if not settings.eab_key_file.exists():
        settings.eab_key_file.write_text(HMAC_TEXT + "\n")
    folder = Path("/var/tmp") / f"lecp-sock-{secrets.token_hex(4)}"
    folder.mkdir(mode=0o755)
    path = folder / "root.sock"
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=serve_root_socket,
        args=(settings,),
        kwargs={"path": path, "allowed_uids": [uid], "stop": stop, "ready": ready.set},
        daemon=True,
    )
    thread.start()
    assert ready.wait(10)
    try:
        yield path, uid
    finally:
        stop.set()
        thread.join(timeout=10)
        folder.rmdir()


def _ask_as(uid: int, path: Path, request: dict[str, object]) -> dict[str, object]:
    """Ask the socket from a child running as `uid` (SO_PEERCRED sees that uid)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        try:
            os.setgid(uid)
            os.setuid(uid)
            try:
                reply: dict[str, object] = ask_root(path, request, timeout=10)
            except RootServiceError as exc:
                reply = {"refused": str(exc)}
            os.write(write_fd, json.dumps(reply).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    return result


def _jwk() -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import ec

    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).decode().rstrip("=")

    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y)}


def test_root_service_signs_for_the_allowed_uid_only(bed: Bed, service: tuple[Path, int]) -> None:
    path, uid = service
    url = bed.pebble.directory_url.rsplit("/", 1)[0] + "/sign-me-up"
    jwk = _jwk()
    reply = _ask_as(uid, path, {"op": "eab_binding", "jwk": jwk, "url": url})
    binding = reply["binding"]
    assert isinstance(binding, dict)
    # The JWS is what RFC 8555 §7.3.4 says: HS256 over the JWK, kid and url in the header.
    header = json.loads(base64.urlsafe_b64decode(binding["protected"] + "=="))
    assert header == {"alg": "HS256", "kid": KID, "url": url}
    assert json.loads(base64.urlsafe_b64decode(binding["payload"] + "==")) == jwk
    mac = hmac.new(
        HMAC_KEY, f"{binding['protected']}.{binding['payload']}".encode(), hashlib.sha256
    )
    assert base64.urlsafe_b64decode(binding["signature"] + "=") == mac.digest()

    # Another uid (here root itself) gets nothing.
    with pytest.raises(RootServiceError, match="not allowed"):
        ask_root(path, {"op": "eab_binding", "jwk": jwk, "url": url})
    # A private key, another CA's URL, or an unknown request: refused.
    for bad in (
        {"op": "eab_binding", "jwk": {**jwk, "d": "c2VjcmV0"}, "url": url},
        {"op": "eab_binding", "jwk": jwk, "url": "https://ca.example.net/new-account"},
        {"op": "eab_binding", "jwk": jwk},
        {"op": "hmac_key"},
    ):
        assert "refused" in _ask_as(uid, path, bad)
    assert _ask_as(uid, path, {"op": "ping"}) == {"ok": True}


def test_the_daemons_socket_answers_cpanel_users_only(bed: Bed) -> None:
    """`spawn_root_service(settings)` as the daemon launcher runs it: the well-known socket,
    answering any cPanel account's uid and nobody else."""
    from letsencrypt_cpanel.root_service import spawn_root_service

    settings = Settings(root=bed.root, acme_directory=bed.pebble.directory_url, eab_kid=KID)
    if not settings.eab_key_file.exists():
        settings.eab_key_file.write_text(HMAC_TEXT + "\n")
    user = bed.new_user("daemonsock", "daemonsock.test")
    uid = lookup_user(settings, user).uid
    url = bed.pebble.directory_url.rsplit("/", 1)[0] + "/sign-me-up"
    with spawn_root_service(settings) as service:
        assert service.path == settings.root_socket
        assert settings.root_socket.stat().st_mode & 0o777 == 0o666
        reply = _ask_as(uid, service.path, {"op": "eab_binding", "jwk": _jwk(), "url": url})
        assert set(reply["binding"]) == {"protected", "payload", "signature"}  # type: ignore[arg-type]
        # A uid with no cPanel account (a system user's, here nobody's) is refused.
        assert "refused" in _ask_as(65534, service.path, {"op": "ping"})
    assert not settings.root_socket.exists()
