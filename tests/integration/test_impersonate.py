"""Root runs a job as a user for real: ids, no way back, non-dumpable, timeouts, hostile summaries.

Also the system accounts the jobs run as (`system_users`), and the record store inside a worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from letsencrypt_cpanel import fork_gate
from letsencrypt_cpanel.config import Settings
from letsencrypt_cpanel.errors import RecordError, WorkerError, WorkerTimeout
from letsencrypt_cpanel.impersonate import (
    MAX_SUMMARY_BYTES,
    JobFailed,
    JSONValue,
    parse_summary,
    run_as_user,
    summary_fd,
)
from letsencrypt_cpanel.record_format import CertificateEntry
from letsencrypt_cpanel.store import RecordStore
from letsencrypt_cpanel.system_users import (
    SystemUser,
    UserRefused,
    lookup_user,
    supplementary_gids,
)
from tests.fixtures.fork_gate_holder import held_elsewhere

UID, GID, OTHER_GID = 29001, 29001, 29002

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="drops privileges for real")


@pytest.fixture
def base() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="lecp-worker-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


@pytest.fixture
def user(base: Path) -> SystemUser:
    home = base / "home" / "lecptest"
    home.mkdir(parents=True)
    (base / "home").chmod(0o755)
    os.chown(home, UID, GID)
    home.chmod(0o711)
    return SystemUser("lecptest", UID, GID, home, "/bin/bash")


def run(user: SystemUser, job: object, timeout: float = 20, **kwargs: object) -> JSONValue:
    return run_as_user(user, job, timeout=timeout, **kwargs)  # type: ignore[arg-type]


@needs_root
@pytest.mark.root
def test_job_runs_with_the_users_ids_home_and_environment(
    user: SystemUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LECP_TEST_WHM_TOKEN", "root-only-token")

    def job() -> JSONValue:
        umask = os.umask(0o022)
        return {
            "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
            "groups": sorted(os.getgroups()),
            "cwd": os.getcwd(),
            "umask": umask,
            "env": {k: os.environ.get(k) for k in ("HOME", "USER", "LOGNAME")},
            "token": os.environ.get("LECP_TEST_WHM_TOKEN"),
        }

    result = run(user, job, groups=[GID, OTHER_GID])
    assert result == {
        "ids": [UID, UID, GID, GID],
        "groups": [GID, OTHER_GID],
        "cwd": str(user.home),
        "umask": 0o022,
        "env": {"HOME": str(user.home), "USER": "lecptest", "LOGNAME": "lecptest"},
        "token": None,
    }
    assert run(user, lambda: os.getgroups()) == []


@needs_root
@pytest.mark.root
def test_job_cannot_go_back_to_root_and_is_not_dumpable(user: SystemUser) -> None:
    def job() -> JSONValue:
        regained = []
        for name, call in [
            ("setuid", lambda: os.setuid(0)),
            ("seteuid", lambda: os.seteuid(0)),
            ("setresuid", lambda: os.setresuid(0, 0, 0)),
            ("setgid", lambda: os.setgid(0)),
            ("setgroups", lambda: os.setgroups([0])),
        ]:
            try:
                call()
            except PermissionError:
                continue
            regained.append(name)
        libc = ctypes.CDLL(None, use_errno=True)
        return {"regained": regained, "dumpable": libc.prctl(3, 0, 0, 0, 0)}

    assert run(user, job) == {"regained": [], "dumpable": 0}


@needs_root
@pytest.mark.root
def test_job_cannot_read_a_root_only_file(base: Path, user: SystemUser) -> None:
    secret = base / "root-only"
    secret.write_text("root's secret")
    secret.chmod(0o600)

    def job() -> JSONValue:
        try:
            return secret.read_text()
        except PermissionError:
            return "denied"

    assert run(user, job) == "denied"


@needs_root
@pytest.mark.root
def test_before_drop_wipes_secrets_in_the_child_only(user: SystemUser) -> None:
    token = bytearray(b"whm-token-value")

    def wipe() -> None:
        token[:] = b"\0" * len(token)

    assert run(user, lambda: token.decode(), before_drop=wipe) == "\0" * len(token)
    assert token == bytearray(b"whm-token-value")


@needs_root
@pytest.mark.root
def test_the_fork_waits_for_another_threads_tls_call(user: SystemUser) -> None:
    # A fork beside a TLS call copies OpenSSL's locks held and the worker hangs (fork_gate.py).
    with held_elsewhere(fork_gate.openssl_in_use, 0.4) as released:
        started = run(user, time.time)
    assert isinstance(started, float) and started >= released() > 0


@needs_root
@pytest.mark.root
def test_a_job_makes_tls_calls_though_it_was_forked_inside_the_gate(user: SystemUser) -> None:
    def job() -> JSONValue:
        with fork_gate.openssl_in_use():
            return "not waiting for a fork that ended in root"

    assert run(user, job, timeout=10) == "not waiting for a fork that ended in root"


@needs_root
@pytest.mark.root
def test_a_hanging_job_is_killed_with_what_it_started(user: SystemUser) -> None:
    pid_file = user.home / "sleeper.pid"

    def job() -> JSONValue:
        sleeper = subprocess.Popen(["sleep", "300"])
        pid_file.write_text(str(sleeper.pid))
        time.sleep(300)
        return None

    started = time.monotonic()
    with pytest.raises(WorkerTimeout) as caught:
        run(user, job, timeout=1.5)
    assert time.monotonic() - started < 10
    assert caught.value.user == "lecptest" and caught.value.seconds == 1.5
    sleeper = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(sleeper):
        time.sleep(0.05)
    assert not _alive(sleeper)


@needs_root
@pytest.mark.root
def test_a_job_that_closes_the_pipe_and_lingers_is_killed_at_its_timeout(
    user: SystemUser,
) -> None:
    def job() -> JSONValue:
        os.close(summary_fd())
        time.sleep(300)
        return None

    started = time.monotonic()
    with pytest.raises(WorkerTimeout):
        run(user, job, timeout=1.0)
    assert 0.9 < time.monotonic() - started < 10


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _write_to_root(data: bytes) -> None:
    """What a compromised job could do: write its own bytes to the summary pipe."""
    view = memoryview(data)
    while view:
        view = view[os.write(summary_fd(), view) :]


@needs_root
@pytest.mark.root
def test_garbage_on_the_pipe_is_not_a_summary(user: SystemUser) -> None:
    def job() -> JSONValue:
        _write_to_root(b"\xffgarbage")
        return "fine"

    with pytest.raises(WorkerError, match="not a summary"):
        run(user, job)


@needs_root
@pytest.mark.root
def test_huge_output_is_cut_off(user: SystemUser) -> None:
    def job() -> JSONValue:
        _write_to_root(b'{"ok": true, "result": "' + b"x" * (8 * MAX_SUMMARY_BYTES))
        return None

    started = time.monotonic()
    with pytest.raises(WorkerError, match="not a summary"):
        run(user, job, timeout=30)
    assert time.monotonic() - started < 10


@needs_root
@pytest.mark.root
def test_deeply_nested_json_is_refused(user: SystemUser) -> None:
    def job() -> JSONValue:
        _write_to_root(b'{"ok": true, "result": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
        os._exit(0)

    with pytest.raises(WorkerError, match="not a summary"):
        run(user, job)
    nested: JSONValue = "bottom"
    for _ in range(40):
        nested = [nested]
    assert run(user, lambda: nested) == nested


@needs_root
@pytest.mark.root
def test_our_errors_come_back_with_their_message(user: SystemUser) -> None:
    def job() -> JSONValue:
        raise RecordError("The certificate record is locked; try again in a minute.")

    with pytest.raises(JobFailed) as caught:
        run(user, job)
    assert str(caught.value) == "The certificate record is locked; try again in a minute."
    assert caught.value.kind == "RecordError"
    assert isinstance(caught.value, WorkerError)


@needs_root
@pytest.mark.root
def test_unexpected_errors_do_not_leak_their_message(user: SystemUser) -> None:
    def job() -> JSONValue:
        raise ValueError("token=sekrit-123")

    with pytest.raises(WorkerError) as caught:
        run(user, job)
    assert "sekrit" not in str(caught.value)
    assert "ValueError" in str(caught.value)

    with pytest.raises(WorkerError, match="not JSON"):
        run(user, lambda: {1, 2})


@needs_root
@pytest.mark.root
def test_a_child_killed_or_silent_is_a_worker_error(user: SystemUser) -> None:
    with pytest.raises(WorkerError, match="killed by SIGKILL"):
        run(user, lambda: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(WorkerError, match="without a summary"):
        run(user, lambda: os._exit(0))
    with pytest.raises(WorkerError, match="exit status 3"):
        run(user, lambda: os._exit(3))
    # The parent is fine, and no child is left behind.
    assert run(user, lambda: "still working") == "still working"
    try:
        reaped = os.waitpid(-1, os.WNOHANG)[0]
    except ChildProcessError:
        reaped = 0
    assert reaped == 0


@needs_root
@pytest.mark.root
def test_root_and_group_zero_are_refused(user: SystemUser) -> None:
    root = SystemUser("root", 0, 0, Path("/root"), "/bin/bash")
    with pytest.raises(WorkerError, match="root"):
        run(root, lambda: None)
    with pytest.raises(WorkerError, match="root"):
        run(user, lambda: None, groups=[0])


@needs_root
@pytest.mark.root
def test_record_store_in_a_worker_writes_the_users_private_file(user: SystemUser) -> None:
    def job() -> JSONValue:
        with RecordStore(user.home).locked() as txn:
            txn.record.certificates["example.com"] = CertificateEntry(vhost="example.com")
            txn.save()
        return sorted(RecordStore(user.home).load().certificates)

    assert run(user, job) == ["example.com"]
    store = RecordStore(user.home)
    assert user.home.stat().st_uid == UID
    for folder in (user.home / ".cpanel", store.folder):
        st = folder.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (UID, 0o700)
    for path in (store.path, store.lock_path):
        st = path.lstat()
        assert stat.S_ISREG(st.st_mode)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (UID, GID, 0o600)
    assert json.loads(store.path.read_text())["certificates"]["example.com"]["vhost"]


@needs_root
@pytest.mark.root
def test_record_store_in_a_worker_refuses_a_planted_link(base: Path, user: SystemUser) -> None:
    root_dir = base / "root-owned"
    root_dir.mkdir(mode=0o755)
    cpanel = user.home / ".cpanel"
    cpanel.mkdir(mode=0o700)
    os.chown(cpanel, UID, GID)
    os.symlink(root_dir, cpanel / "nvdata")
    os.lchown(cpanel / "nvdata", UID, GID)

    def job() -> JSONValue:
        with RecordStore(user.home).locked() as txn:
            txn.save()
        return "saved"

    with pytest.raises(JobFailed, match="symbolic link"):
        run(user, job)
    assert os.listdir(root_dir) == []


# -- parse_summary: the parent's view of untrusted bytes ------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'"ok"',
        b'{"ok": 1, "result": 2}',
        b'{"ok": true}',
        b'{"ok": true, "result": 1, "extra": 2}',
        b'{"ok": true, "ok": true, "result": 1}',
        b'{"ok": true, "result": NaN}',
        b'{"ok": false, "error": "", "kind": "x"}',
        b'{"ok": false, "error": 5, "kind": "x"}',
        b'{"ok": false, "error": "' + b"e" * 5000 + b'", "kind": "x"}',
        b'{"ok": true, "result": 1} trailing',
        b'{"ok": true, "result": "\xff"}',
        b'{"ok": true, "result": ' + b"[" * 65 + b"]" * 65 + b"}",
    ],
)
def test_parse_summary_refuses_what_is_not_a_summary(data: bytes) -> None:
    with pytest.raises(WorkerError, match="not a summary") as caught:
        parse_summary(data, "bob")
    assert not isinstance(caught.value, JobFailed)


def test_parse_summary_accepts_the_two_shapes() -> None:
    assert parse_summary(b'{"ok": true, "result": {"a": ["[{"]}}', "bob") == {"a": ["[{"]}
    with pytest.raises(JobFailed) as caught:
        parse_summary(
            b'{"ok": false, "error": "bad\\u001b[31m\\r\\nthing", "kind": "X\\u0000"}', "bob"
        )
    # Control characters (terminal escapes, CR) are blanked; a line break is kept.
    assert str(caught.value) == "bad [31m \nthing"
    assert caught.value.kind == "X " and caught.value.user == "bob"
    with pytest.raises(WorkerError, match="without a summary"):
        parse_summary(b"", "bob")


# -- system_users ------------------------------------------------------------------------------

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
toor:x:0:0::/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
oldsys:x:499:499::/home/oldsys:/bin/sh
rootgroup:x:29010:0::/home/rootgroup:/bin/sh
bob:x:29001:29001::/home/bob:/bin/bash
relative:x:29003:29003::home/relative:/bin/bash
broken:x:abc:29001::/home/broken:/bin/bash
+::::::
bob:x:29999:29999::/home/bob2:/bin/bash
"""

GROUP = """\
root:x:0:bob
mail:x:8:
bob:x:29001:
web:x:29002:alice,bob
other:x:29004:alice
fancy:x:29005:bobby
"""


@pytest.fixture
def settings(base: Path) -> Settings:
    (base / "etc").mkdir()
    (base / "etc" / "passwd").write_text(PASSWD)
    (base / "etc" / "group").write_text(GROUP)
    return Settings(root=base)


def test_lookup_user_reads_the_passwd_under_the_root_prefix(settings: Settings) -> None:
    assert lookup_user(settings, "bob") == SystemUser(
        "bob", 29001, 29001, Path("/home/bob"), "/bin/bash"
    )
    assert lookup_user(settings, "nobody").uid == 65534


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("root", "it is root"),
        ("toor", "it is root"),
        ("rootgroup", "it is root"),
        ("daemon", "system account"),
        ("oldsys", "system account"),
        ("ghost", "no such user"),
        ("", "not a valid user name"),
        ("../etc", "not a valid user name"),
        ("relative", "not an absolute path"),
        ("broken", "malformed"),
    ],
)
def test_lookup_user_refuses(settings: Settings, name: str, reason: str) -> None:
    with pytest.raises(UserRefused, match=reason) as caught:
        lookup_user(settings, name)
    assert caught.value.user == name
    assert repr(name) in str(caught.value)


def test_supplementary_gids_never_include_root(settings: Settings) -> None:
    assert supplementary_gids(settings, "bob") == [29002]
    assert supplementary_gids(settings, "alice") == [29002, 29004]
    assert supplementary_gids(settings, "ghost") == []


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_parse_summary_never_fails_otherwise(data: bytes) -> None:
    with contextlib.suppress(WorkerError):
        parse_summary(data, "bob")


@needs_root
@pytest.mark.root
def test_roots_open_files_are_out_of_the_jobs_reach(user: SystemUser, base: Path) -> None:
    secret = base / "root-only"
    secret.write_text("root's secret")
    secret.chmod(0o600)
    with secret.open() as held:

        def job() -> JSONValue:
            try:
                return os.read(held.fileno(), 100).decode()
            except OSError as exc:
                return exc.strerror

        assert run(user, job) in ("", "Bad file descriptor")  # /dev/null, or closed


@needs_root
@pytest.mark.root
def test_roots_objects_closing_in_the_job_never_close_the_jobs_own_files(
    user: SystemUser,
) -> None:
    # A socket root holds (a connection pool's, say) is closed in the child when collected.
    # Its number must not belong to a file the job opened meanwhile.
    inherited = [socket.socketpair() for _ in range(3)]
    numbers = [s.fileno() for pair in inherited for s in pair]

    def job() -> JSONValue:
        opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(max(numbers) + 5)]
        for pair in inherited:
            for sock in pair:
                sock.close()
        broken = []
        for fd in opened:
            try:
                os.fstat(fd)
            except OSError:
                broken.append(fd)
        return {"clashed": sorted(set(opened) & set(numbers)), "broken": broken}

    try:
        assert run(user, job) == {"clashed": [], "broken": []}
    finally:
        for pair in inherited:
            for sock in pair:
                sock.close()
